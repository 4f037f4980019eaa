"""The server's side of the ASGI lifespan protocol, for runs of a user's app
and for lifespan sessions (`asgifuzz._driver.sessions`)."""

from __future__ import annotations

from typing import Any

import anyio

from asgifuzz._types import ASGIApp, Message
from asgifuzz.models._lifespan_app import log_lifespan
from asgifuzz.models._record import Recorder, describe_briefly


class Lifespan:
    """The server's side of the ASGI lifespan protocol for one run.

    ``state`` is the lifespan state extension's dict: the app fills it at
    startup (Starlette: what its lifespan yields) and each request's scope gets
    a shallow copy of it, as uvicorn and hypercorn do (`request_state`).
    ``rec``, in a lifespan session, records every message at boundary 0.
    """

    def __init__(self, rec: Recorder | None = None) -> None:
        self.state: dict[str, Any] = {}
        self.completed = False
        self.started = anyio.Event()
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.supported = True
        self.failed: str | None = None
        #: The server saw ``lifespan.startup.failed`` (not a shutdown failure).
        self.startup_failed = False
        #: The lifespan call raised (a description), or None.
        self.raised: str | None = None
        #: The tick at which the server gave up waiting for startup, or None.
        self.gave_up: int | None = None
        self.rec = rec
        self._phase = "startup"

    async def receive(self) -> Message:
        if self._phase == "startup":
            self._phase = "running"
            message = {"type": "lifespan.startup"}
        else:
            await self.stop.wait()
            if self._phase == "over":  # the protocol has no third message
                await anyio.sleep_forever()
            self._phase = "over"
            message = {"type": "lifespan.shutdown"}
        if self.rec is not None:
            log_lifespan(self.rec, 0, "receive", message)
        return message

    async def send(self, message: Message) -> None:
        if self.rec is not None:
            log_lifespan(self.rec, 0, "send", message)
        kind = message.get("type")
        if kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            self.failed = f"{kind}: {message.get('message', '')}"
        self.startup_failed = self.startup_failed or kind == "lifespan.startup.failed"
        self.completed = self.completed or kind == "lifespan.startup.complete"
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            self.started.set()
        else:
            self.done.set()

    async def run(self, app: ASGIApp) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:
            self.raised = describe_briefly(exc)
            if self.rec is not None:
                log_lifespan(
                    self.rec,
                    0,
                    "raise",
                    detail=self.raised,
                    exc_type=type(exc).__name__,
                )
            if not self.started.is_set():
                # The spec: an app that raises on the lifespan scope does not
                # support it; the server goes on without lifespan events.
                self.supported = False
            else:
                self.failed = self.failed or "the lifespan task raised"
        else:
            if self.rec is not None:
                log_lifespan(self.rec, 0, "return")
        finally:
            self.started.set()
            self.done.set()

    def request_state(self) -> dict[str, Any]:
        """The ``scope["state"]`` of a request: a shallow copy of the startup's
        state (what the app stored is shared; keys a request adds are not)."""
        return dict(self.state)

    @property
    def serves(self) -> bool:
        """Whether the server goes on to serve requests once startup is over:
        unless it was told ``lifespan.startup.failed`` (uvicorn and hypercorn
        stop); an app that raised or returned first does not support lifespan,
        and the server goes on without it."""
        return self.started.is_set() and not self.startup_failed

    @property
    def startup_note(self) -> str:
        """What the transcript says about startup once it is over."""
        if self.completed:
            return "lifespan startup complete"
        return (
            "lifespan: the app returned without completing startup, so nothing it "
            "makes at startup exists (does a layer not pass the lifespan scope on?)"
        )
