"""The middleware zoo: `BaseHTTPMiddleware` behaviours and their pure-ASGI twins.

Each behaviour is written the way a careful user writes it, so that a finding
points at the framework, not at the model. The twins have the same meaning: a
twin that reads the body replays it to the next layer; a twin that catches only
answers when no response has started yet.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
from starlette.background import BackgroundTask
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from asgifuzz._errors import ModelError
from asgifuzz._types import ASGIApp, Message, Receive, Scope, Send
from asgifuzz.models._encode import (
    DEFAULT_CODINGS,
    encoded_headers,
    encodes,
    encoding_send,
    gzipped,
)
from asgifuzz.models._parts import Layer
from asgifuzz.models._record import Background, Read, Recorder

HEADER_PREFIX = "x-asgifuzz-"
PATHSEND = "http.response.pathsend"
#: The extensions a body rewriter takes out of the scope it passes on: their
#: messages carry the body as a file, which it cannot rewrite.
FILE_EXTENSIONS = (PATHSEND, "http.response.zerocopysend")


async def pause(n: int) -> None:
    """``n`` scheduler checkpoints, the unit of interleaving exploration."""
    for _ in range(n):
        await anyio.lowlevel.checkpoint()


def transform(chunk: bytes) -> bytes:
    """The streaming body transform: length-preserving, so Content-Length holds."""
    return chunk.swapcase()


async def run_background(rec: Recorder, record: Background, raises: bool) -> None:
    """The body of a middleware's background task."""
    record.runs += 1
    record.started = rec.note(f"background task of {record.owner} starts")
    record.response_complete_at_start = rec.response_complete is not None
    await anyio.lowlevel.checkpoint()
    if raises:
        record.raised = rec.model_raise(ModelError(f"background of {record.owner}"))
        raise record.raised
    record.finished = rec.note(f"background task of {record.owner} ends")
    record.response_complete_at_end = rec.response_complete is not None


class ModelHTTPMiddleware(BaseHTTPMiddleware):
    """A `BaseHTTPMiddleware` subclass whose ``dispatch`` follows a `Layer` model."""

    def __init__(
        self, app: ASGIApp, *, model: Layer, recorder: Recorder, name: str, index: int
    ) -> None:
        super().__init__(app)
        self.model = model
        self.rec = recorder
        self.name = name
        self.index = index

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        before, after = self.model.pauses
        behaviour, rec = self.model.behaviour, self.rec
        await pause(before)
        if behaviour == "short_circuit":
            return PlainTextResponse("short-circuit", status_code=403)
        if behaviour == "raise_before":
            raise rec.model_raise(ModelError(self.name))
        if behaviour == "read_body":
            rec.reads.append(
                Read(self.name, await request.body(), True, layer=self.index)
            )
        elif behaviour == "read_stream":
            read = Read(self.name, b"", False, layer=self.index)
            rec.reads.append(read)
            async for chunk in request.stream():
                read.data += chunk
            read.complete = True
        elif behaviour == "poll_disconnect" and await request.is_disconnected():
            rec.disconnects_seen.append(
                (self.name, rec.note(f"{self.name} saw disconnect"))
            )
        if behaviour in ("transform_body", "replace_body", "encode"):
            extensions = request.scope.get("extensions", {})
            if any(name in extensions for name in FILE_EXTENSIONS):
                # The body iterator would yield the pathsend message itself (a
                # dict), which no body rewriter can rewrite, and a zero-copy
                # send fails its assertion: take both out of the scope
                # call_next passes on (the same dict).
                request.scope["extensions"] = {
                    k: v for k, v in extensions.items() if k not in FILE_EXTENSIONS
                }
        if behaviour == "catch":
            try:
                response: Response = await call_next(request)
            except Exception as exc:
                rec.handled.append(exc)
                rec.note(f"{self.name} handled {type(exc).__name__}")
                return PlainTextResponse("caught", status_code=502)
        else:
            response = await call_next(request)
        await pause(after)
        if behaviour == "raise_after":
            raise rec.model_raise(ModelError(self.name))
        if behaviour == "add_header":
            response.headers[HEADER_PREFIX + "bhm"] = "1"
        elif behaviour == "transform_body":
            inner = response.body_iterator  # type: ignore[attr-defined]

            async def transformed() -> Any:
                async for chunk in inner:
                    yield transform(chunk)

            response.body_iterator = transformed()  # type: ignore[attr-defined]
        elif behaviour == "replace_body":
            body = b"".join([c async for c in response.body_iterator])  # type: ignore[attr-defined]
            headers = {
                k: v for k, v in response.headers.items() if k != "content-length"
            }
            return Response(
                transform(body), status_code=response.status_code, headers=headers
            )
        elif behaviour == "background":
            record = Background(self.name, layer=self.index)
            rec.background.append(record)
            response.background = BackgroundTask(run_background, rec, record, False)
        elif behaviour == "encode":
            codings = str(self.model.options.get("codings", DEFAULT_CODINGS))
            raw = response.raw_headers
            if encodes(request.scope, response.status_code, raw, codings):
                response.raw_headers = encoded_headers(raw)
                response.body_iterator = gzipped(response.body_iterator)  # type: ignore[attr-defined]
        return response


class ModelASGIMiddleware:
    """The pure-ASGI twin of `ModelHTTPMiddleware`: same behaviours, no task groups."""

    def __init__(
        self, app: ASGIApp, *, model: Layer, recorder: Recorder, name: str, index: int
    ) -> None:
        self.app = app
        self.model = model
        self.rec = recorder
        self.name = name
        self.index = index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        before, after = self.model.pauses
        behaviour, rec = self.model.behaviour, self.rec
        await pause(before)
        if behaviour == "short_circuit":
            await PlainTextResponse("short-circuit", status_code=403)(
                scope, receive, send
            )
            return
        if behaviour == "raise_before":
            raise rec.model_raise(ModelError(self.name))
        if behaviour in ("read_body", "read_stream", "poll_disconnect"):
            receive = await self._read_ahead(behaviour, receive)
        if behaviour == "catch":
            await self._catching(scope, receive, send)
        elif behaviour in ("add_header", "transform_body", "replace_body", "encode"):
            extensions = scope.get("extensions", {})
            if behaviour != "add_header" and any(
                name in extensions for name in FILE_EXTENSIONS
            ):
                # A body rewriter cannot rewrite a file it is given by path or
                # descriptor: it takes the extensions out of the scope it passes on.
                extensions = {
                    k: v for k, v in extensions.items() if k not in FILE_EXTENSIONS
                }
                scope = {**scope, "extensions": extensions}
            if behaviour == "encode":
                codings = str(self.model.options.get("codings", DEFAULT_CODINGS))
                send = encoding_send(scope, send, codings)
            else:
                send = self._wrap_send(behaviour, send)
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
        await pause(after)
        if behaviour == "raise_after":
            raise rec.model_raise(ModelError(self.name))
        if behaviour == "background":
            record = Background(self.name, layer=self.index)
            rec.background.append(record)
            await run_background(rec, record, False)

    async def _read_ahead(self, behaviour: str, receive: Receive) -> Receive:
        """Read ahead of the next layer and give it back what was read, in order."""
        rec = self.rec
        pending: list[Message] = []
        if behaviour == "poll_disconnect":
            # The pure-ASGI form of Request.is_disconnected(): a receive() that is
            # cancelled at its first checkpoint; a message it did get is replayed.
            with anyio.CancelScope() as scope:
                scope.cancel()
                pending.append(await receive())
            if pending and pending[0]["type"] == "http.disconnect":
                rec.disconnects_seen.append(
                    (self.name, rec.note(f"{self.name} saw disconnect"))
                )
        else:
            read = Read(self.name, b"", False, layer=self.index)
            rec.reads.append(read)
            while True:
                message = await receive()
                pending.append(message)
                if message["type"] != "http.request":
                    read.error = message["type"]
                    break
                read.data += message.get("body", b"")
                if not message.get("more_body", False):
                    read.complete = True
                    break
            if behaviour == "read_body" and read.complete:
                pending = [
                    {"type": "http.request", "body": read.data, "more_body": False}
                ]

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return replay

    async def _catching(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            self.rec.handled.append(exc)
            self.rec.note(f"{self.name} handled {type(exc).__name__}")
            await PlainTextResponse("caught", status_code=502)(scope, receive, send)

    def _wrap_send(self, behaviour: str, send: Send) -> Send:
        held: list[Message] = []
        buffer = bytearray()

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                if behaviour == "add_header":
                    headers = list(message.get("headers", []))
                    headers.append(((HEADER_PREFIX + "asgi").encode(), b"1"))
                    message = {**message, "headers": headers}
                elif behaviour == "replace_body":
                    held.append(message)
                    return
            elif message["type"] == "http.response.body":
                if behaviour == "transform_body":
                    message = {**message, "body": transform(message.get("body", b""))}
                elif behaviour == "replace_body":
                    buffer.extend(message.get("body", b""))
                    if message.get("more_body", False):
                        return
                    await send(held.pop())
                    message = {
                        "type": "http.response.body",
                        "body": transform(bytes(buffer)),
                    }
            await send(message)

        return wrapped


def starlette_middleware(model: Layer) -> tuple[type[Any], dict[str, Any]]:
    """The class and constructor options of one of Starlette's own middlewares.

    Only options that exist in every Starlette release since 0.15 are used.
    """
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    opts = model.options
    behaviour = model.behaviour
    if behaviour == "gzip":
        return GZipMiddleware, {"minimum_size": int(opts.get("minimum_size", 0))}
    if behaviour == "cors":
        origin = str(opts.get("origin", "*"))
        return CORSMiddleware, {
            "allow_origins": [origin],
            "allow_methods": ["*"],
            "allow_headers": ["*"],
        }
    if behaviour == "trusted_host":
        return TrustedHostMiddleware, {
            "allowed_hosts": [str(opts.get("host", "testserver"))]
        }
    if behaviour == "sessions":
        from starlette.middleware.sessions import SessionMiddleware

        return SessionMiddleware, {"secret_key": "asgifuzz"}
    return HTTPSRedirectMiddleware, {}
