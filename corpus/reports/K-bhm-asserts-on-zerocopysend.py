"""A pass-through BaseHTTPMiddleware leaves http.response.zerocopysend in the scope it
passes on, then fails its own assertion on the endpoint's zero-copy send.

A standalone reproducer for asgifuzz's failure I1:AssertionError
(corpus/bhm-asserts-on-zerocopysend.json).

Run: python K-bhm-asserts-on-zerocopysend.py
(exit status 1: the bug shows; 0: it does not). Needs only starlette and the standard
library. The server is scripted: it advertises http.response.zerocopysend, as the
ASGI spec's Zero Copy Send extension describes (no real server does yet), reads the
bytes of each zero-copy send from the file as sendfile would, and records what it gets.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from importlib.metadata import version
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

CONTENT = b"hello, zero-copy send"
ZEROCOPYSEND = "http.response.zerocopysend"
Message = dict[str, Any]


#: The file the endpoint sends (a temporary one, written by main()).
PATH = os.path.join(tempfile.mkdtemp(), "file.txt")


async def endpoint(scope: Message, receive: Any, send: Any) -> None:
    """A raw ASGI endpoint: a zero-copy send of a file where the server advertises
    the extension, a plain body elsewhere."""
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-length", str(len(CONTENT)).encode())],
    }
    with open(PATH, "rb") as f:  # noqa: ASYNC230 (a small local file, as an app opens one)
        await send(start)
        if ZEROCOPYSEND in scope.get("extensions", {}):
            await send({"type": ZEROCOPYSEND, "file": f})  # the whole file, final
        else:
            await send({"type": "http.response.body", "body": f.read()})


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        return await call_next(request)


app = PassThrough(endpoint)


async def serve() -> tuple[list[str], bytes, bool, BaseException | None]:
    """One request through ``app``; what the server got: message types, body bytes,
    whether the response completed, and what the app raised."""
    got: list[str] = []
    body = bytearray()
    complete = False
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "2",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {ZEROCOPYSEND: {}},
    }
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal complete
        got.append(message["type"])
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            complete = not message.get("more_body", False)
        elif message["type"] == ZEROCOPYSEND:  # what sendfile would put on the wire
            fd, count = message["file"].fileno(), message.get("count")
            if "offset" in message:
                data = os.pread(fd, count or os.fstat(fd).st_size, message["offset"])
            else:
                data = os.read(fd, count if count is not None else os.fstat(fd).st_size)
            body.extend(data)
            complete = not message.get("more_body", False)

    raised: BaseException | None = None
    try:
        await asyncio.wait_for(app(scope, receive, send), 5)
    except TimeoutError as exc:  # the app hung
        raised = exc
    except Exception as exc:  # what the app let escape to the server
        raised = exc
    return got, bytes(body), complete, raised


def main() -> int:
    with open(PATH, "wb") as f:
        f.write(CONTENT)
    try:
        got, body, complete, raised = asyncio.run(serve())
    finally:
        os.remove(PATH)
        os.rmdir(os.path.dirname(PATH))
    print(f"Starlette {version('starlette')}; server got: {got}, body {body!r}")
    if raised is not None or not complete or body != CONTENT:
        print(
            f"BUG: the endpoint sent {CONTENT!r} with http.response.zerocopysend, which "
            "the scope passed down still advertised; the app raised "
            f"{type(raised).__name__ if raised else 'nothing'}: {raised}; the response "
            f"{'completed' if complete else 'never completed'} with body {body!r}"
        )
        return 1
    print("ok: the zero-copy send reached the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
