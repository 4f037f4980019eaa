"""The driver: the server and client that run one case on asyncio or trio.

`runner.run` builds the case's app, plays the server's and the client's part
with virtual time (`vtime`, `determinism`), and returns an `outcome.Outcome`.
Imports models and `_types`; nothing above it.
"""
