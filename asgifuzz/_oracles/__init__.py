"""The invariants: what a run must do, judged from its `Outcome`.

`verdict.judge` runs a case on each backend (through the driver) and checks
every invariant. Imports the driver and models; never the corpus or the CLI.
"""
