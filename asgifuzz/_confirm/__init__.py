"""Confirming findings on real servers, and checking the server profiles against
them: the server process (`serve`), the real client (`client`), the verdicts
(`judge`, `confirm`) and the conformance probe (`probe`, `conformance`)."""
