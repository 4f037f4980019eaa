"""Fuzz campaigns: ``Campaign(FuzzConfig(...)).run()`` (`asgifuzz._campaign.campaign`)
over the Hypothesis loop, worker processes, the database, live progress and the
reports. Imports the oracles, corpus and strategies; ``asgifuzz fuzz`` calls it.
"""
