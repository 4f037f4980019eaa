"""A user's layers that do more than pass through, for the declared-semantics
tests: a request-body transformer, a response buffer and a gzip encoder, each
with planted bugs chosen by ``bug=`` (the same class, other arguments)."""

from __future__ import annotations

import gzip
from typing import Any

import anyio
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response


class Recase:
    """Pure ASGI: flips the case bit of every request body byte it passes down.

    ``bug="skip-empty"`` drops empty body messages (so the final one too: the
    app below waits for the rest); ``bug="first-only"`` passes the first message
    down as the whole body.
    """

    def __init__(self, app: Any, bug: str = "") -> None:
        self.app, self.bug = app, bug

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recased() -> Any:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                body = message.get("body", b"")
                if self.bug == "skip-empty" and not body:
                    continue
                more = message.get("more_body", False) and self.bug != "first-only"
                flipped = bytes(b ^ 0x20 for b in body)
                return {"type": "http.request", "body": flipped, "more_body": more}

        await self.app(scope, recased, send)


class Buffer:
    """Pure ASGI: holds the whole response body back and sends it in one message
    with its content-length.

    ``bug="lose-last"`` forgets the final message's bytes; ``bug="no-flush"``
    waits for the final message even when the app below returned without one
    (a client that left).
    """

    def __init__(self, app: Any, bug: str = "") -> None:
        self.app, self.bug = app, bug

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        done = anyio.Event()

        async def buffered(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            more = message.get("more_body", False)
            if more or self.bug != "lose-last":
                chunks.append(message.get("body", b""))
            if not more:
                body = b"".join(chunks)
                headers = [
                    (k, v)
                    for k, v in start["headers"]
                    if k.lower() != b"content-length"
                ]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                done.set()

        await self.app(scope, receive, buffered)
        if self.bug == "no-flush":
            await done.wait()


class Gzipper:
    """Pure ASGI: gzips a response sent in one message (whatever its size) and
    passes a streamed one on as it is; needs ``accept-encoding: gzip``.

    ``bug="truncate"`` cuts the gzip trailer off (the stream does not end);
    ``bug="keep-length"`` keeps the uncompressed body's content-length.
    ``coding`` is the content-encoding it says it applied (another name for
    gzip, for codings that cannot be decoded here).
    """

    def __init__(self, app: Any, bug: str = "", coding: str = "gzip") -> None:
        self.app, self.bug, self.coding = app, bug, coding.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        accepts = any(
            k == b"accept-encoding" and b"gzip" in v
            for k, v in scope.get("headers", [])
        )
        if scope["type"] != "http" or not accepts:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        passing = False  # on as it is: a streamed body, or no content

        async def encoded(message: Any) -> None:
            nonlocal passing
            if message["type"] == "http.response.start":
                start.update(message)
                # No content with these statuses (RFC 9110 §6.4.1): nothing to encode.
                if message["status"] < 200 or message["status"] in (204, 304):
                    passing = True
                    await send(message)
                return
            if not passing and message.get("more_body", False):
                passing = True
                await send(start)
            if passing:
                await send(message)
                return
            body = gzip.compress(message.get("body", b""), mtime=0)
            if self.bug == "truncate":
                body = body[:-8]
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"vary"]
            if self.bug != "keep-length":
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            headers += [
                (b"content-encoding", self.coding),
                (b"vary", b"Accept-Encoding"),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, encoded)


class BaseGzipper(BaseHTTPMiddleware):
    """A `BaseHTTPMiddleware` compressor: gzips the whole body (for the
    attribution of an encoder of that family)."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        body = b"".join([chunk async for chunk in response.body_iterator])
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        return Response(
            gzip.compress(body, mtime=0),
            status_code=response.status_code,
            headers={**headers, "content-encoding": "gzip"},
        )
