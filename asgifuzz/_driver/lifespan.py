"""The server's side of the ASGI lifespan protocol, for runs of a user's app."""

from __future__ import annotations

from typing import Any

import anyio

from asgifuzz._types import ASGIApp, Message


class Lifespan:
    """The server's side of the ASGI lifespan protocol for one run.

    ``state`` is the lifespan state extension's dict: the app fills it at
    startup (Starlette: what its lifespan yields) and each request's scope gets
    a shallow copy of it, as uvicorn and hypercorn do (`request_state`).
    """

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.completed = False
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
        self.completed = self.completed or kind == "lifespan.startup.complete"
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

    def request_state(self) -> dict[str, Any]:
        """The ``scope["state"]`` of a request: a shallow copy of the startup's
        state (what the app stored is shared; keys a request adds are not)."""
        return dict(self.state)

    @property
    def startup_note(self) -> str:
        """What the transcript says about startup once it is over."""
        if self.completed:
            return "lifespan startup complete"
        return (
            "lifespan: the app returned without completing startup, so nothing it "
            "makes at startup exists (does a layer not pass the lifespan scope on?)"
        )
