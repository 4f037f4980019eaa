"""The server's side of the ASGI lifespan protocol, for runs of a user's app."""

from __future__ import annotations

from typing import Any

import anyio

from asgifuzz._types import ASGIApp, Message


class Lifespan:
    """The server's side of the ASGI lifespan protocol for one run."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.started = anyio.Event()
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.supported = True
        self.failed: str | None = None
        self._phase = "startup"

    async def receive(self) -> Message:
        if self._phase == "startup":
            self._phase = "running"
            return {"type": "lifespan.startup"}
        await self.stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            self.failed = f"{kind}: {message.get('message', '')}"
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            self.started.set()
        else:
            self.done.set()

    async def run(self, app: ASGIApp) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            if not self.started.is_set():
                # The spec: an app that raises on the lifespan scope does not
                # support it; the server goes on without lifespan events.
                self.supported = False
            else:
                self.failed = self.failed or "the lifespan task raised"
        finally:
            self.started.set()
            self.done.set()
