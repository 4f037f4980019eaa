"""Middleware written for the tests with a planted bug in its lifespan branch,
and its fixed version (`tests/targets/test_lifespan.py`)."""

from __future__ import annotations

from asgifuzz._types import ASGIApp, Message, Receive, Scope, Send


class StartupReporter:
    """Reports the app's startup to a monitor: the planted bug reports a failed
    startup as complete (a "startup must never fail" wrapper)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def reporting(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                message = {"type": "lifespan.startup.complete"}  # the bug
            await send(message)

        await self.app(scope, receive, reporting)


class StartupReporterFixed:
    """The fixed `StartupReporter`: it passes every message on as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def reporting(message: Message) -> None:
            self.seen.append(message["type"])
            await send(message)

        await self.app(scope, receive, reporting)
