"""The headline releases of the version matrix (`asgifuzz._releases.matrix`)."""

from __future__ import annotations

#: The first and last release of every affected range in the corpus, the
#: release after each range, and the newest (tests check this).
RELEASES = (
    "0.15.0",
    "0.16.0",
    "0.17.0",
    "0.18.0",
    "0.19.0",
    "0.19.1",
    "0.20.0",
    "0.20.1",
    "0.20.4",
    "0.21.0",
    "0.23.0",
    "0.23.1",
    "0.27.0",
    "0.28.0",
    "0.29.0",
    "0.30.0",
    "0.31.0",
    "0.36.3",
    "0.37.0",
    "0.38.2",
    "0.38.3",
    "0.38.4",
    "0.38.5",
    "0.45.0",
    "0.45.1",
    "0.45.2",
    "0.45.3",
    "0.46.0",
    "1.2.1",
    "1.3.0",
    "1.6.0",
    "1.7.0",
    "1.10.0",
)
