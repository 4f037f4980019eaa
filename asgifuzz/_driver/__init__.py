"""The driver: the server and client that run one case on asyncio or trio.

`runner.run` builds the case's app, lets `server.FakeServer` play the server's
and the client's part with virtual time (`vtime`, `determinism`), and returns
an `outcome.Outcome`; `timeline` renders one for people. Imports models,
`_targets` and `_types`; nothing above it.
"""
