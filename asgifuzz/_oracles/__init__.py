"""The invariants: what a run must do, judged from its `Outcome`.

`registry.INVARIANTS` lists them (id, title, tags, check; the policy choices
are in its docstring); each check reads the run's `facts.Facts`, computed once.
`verdict.judge` runs a case on each backend (through the driver) and checks
every invariant. Imports the driver and models; never the corpus or the CLI.
"""
