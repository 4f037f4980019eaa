"""The corpus: saved failures as JSON entries, known upstream bugs, replay targets.

Imports models and the oracles' verdicts; never the campaign or the CLI.
"""
