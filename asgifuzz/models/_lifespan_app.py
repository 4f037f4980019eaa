"""Live lifespan sessions: the model apps a `Lifespan` describes, the lifespan
layers, and the tap that records lifespan messages at a boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from asgifuzz._errors import ModelError
from asgifuzz._types import METHODS, ASGIApp, Message, Receive, Scope, Send
from asgifuzz.models._lifespan import Lifespan
from asgifuzz.models._record import Event, Recorder, describe_briefly


def log_lifespan(
    rec: Recorder, where: int, kind: str, message: Message | None = None, **kw: str
) -> None:
    """Record one lifespan event at boundary ``where`` (0: the server's)."""
    record = rec.lifespan
    if record is not None:
        copy = None if message is None else dict(message)
        record.events.append(Event(rec.tick(), rec.clock(), where, kind, copy, **kw))


def _write(rec: Recorder, state: dict[str, Any], key: str, who: str) -> None:
    """``who`` writes ``key`` into the lifespan state, with a value of its own."""
    value = f"{key} of {who}"
    state[key] = value
    assert rec.lifespan is not None  # only sessions build these apps
    rec.lifespan.written[key] = value
    rec.lifespan.writers[key] = who


async def _phase(what: str, message: str) -> None:
    """A phase that does not complete: raise, or hang."""
    if what == "hang":
        await anyio.sleep_forever()
    raise ModelError(message or "lifespan")


def _request_app(rec: Recorder) -> ASGIApp:
    """The http side of every model app: it notes the state it was called with."""

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        assert rec.lifespan is not None  # only sessions build these apps
        rec.lifespan.seen = dict(scope.get("state", {}))
        await PlainTextResponse("hello")(scope, receive, send)

    return respond


def lifespan_app(model: Lifespan, rec: Recorder) -> ASGIApp:
    """The app at the bottom of a session, following ``model``."""
    respond = _request_app(rec)
    if model.app == "starlette":
        return _starlette_app(model, rec, respond)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await respond(scope, receive, send)
            return
        if model.app == "unsupported":
            if model.startup == "raise":
                raise ModelError("this app speaks only http")
            return
        for phase, what in (("startup", model.startup), ("shutdown", model.shutdown)):
            await receive()
            if what == "complete":
                if phase == "startup":
                    for key in model.state:
                        _write(rec, scope.setdefault("state", {}), key, "the app")
                await send({"type": f"lifespan.{phase}.complete"})
            elif what == "fail":
                await send(
                    {"type": f"lifespan.{phase}.failed", "message": model.message}
                )
                return
            else:
                await _phase(what, model.message)

    return app


def _starlette_app(model: Lifespan, rec: Recorder, respond: ASGIApp) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        if model.startup != "complete":
            await _phase(model.startup, model.message)
        state: dict[str, Any] = {}
        for key in model.state:
            _write(rec, state, key, "the app")
        yield state
        if model.shutdown != "complete":
            await _phase(model.shutdown, model.message)

    async def endpoint(request: Request) -> Response:
        assert rec.lifespan is not None  # only sessions build these apps
        rec.lifespan.seen = dict(request.scope.get("state", {}))
        return PlainTextResponse("hello")

    return Starlette(
        routes=[Route("/", endpoint, methods=list(METHODS))], lifespan=lifespan
    )


class LifespanLayer:
    """A ``lifespan.*`` layer (`asgifuzz.models._lifespan.LIFESPAN_LAYER_KINDS`)."""

    def __init__(
        self, app: ASGIApp, *, behaviour: str, recorder: Recorder, name: str
    ) -> None:
        self.app = app
        self.behaviour = behaviour
        self.rec = recorder
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
        elif self.behaviour == "handle":
            # Wrong on purpose: the app's lifespan never runs.
            while True:
                phase = (await receive())["type"].rpartition(".")[2]
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        else:

            async def wrapped() -> Message:
                message = await receive()
                if message["type"] == "lifespan.startup" and "state" in scope:
                    _write(self.rec, scope["state"], self.name, self.name)
                return message

            await self.app(scope, wrapped, send)


class LifespanTap:
    """Records the lifespan messages crossing one boundary (and passes the
    ``http`` scope on untouched); adds no checkpoint, like `Tap`."""

    def __init__(self, app: ASGIApp, *, recorder: Recorder, where: int) -> None:
        self.app = app
        self.rec = recorder
        self.where = where

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        rec, where = self.rec, self.where

        async def tapped_receive() -> Message:
            message = await receive()
            log_lifespan(rec, where, "receive", message)
            return message

        async def tapped_send(message: Message) -> None:
            log_lifespan(rec, where, "send", message)
            await send(message)

        try:
            await self.app(scope, tapped_receive, tapped_send)
        except BaseException as exc:
            cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
            log_lifespan(
                rec,
                where,
                "cancelled" if cancelled else "raise",
                detail=describe_briefly(exc),
                exc_type=type(exc).__name__,
            )
            raise
        log_lifespan(rec, where, "return")
