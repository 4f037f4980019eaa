"""Fuzz campaigns: the Hypothesis loop, worker processes, the database, live
progress and the reports. Imports the oracles, corpus and strategies; the CLI
and the pytest plugin call it.
"""
