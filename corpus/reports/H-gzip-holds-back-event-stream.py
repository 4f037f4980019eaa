"""H: before Starlette 0.46.0, GZipMiddleware compresses a `text/event-stream`
response and holds its events back (PR #2871).

GZipMiddleware's streaming responder writes each body chunk into a `gzip.GzipFile`
and sends what the buffer holds, without a flush: zlib keeps small chunks until
its window fills or the stream ends. For server-sent events that means a client
that accepts gzip gets no event until much later (here: only the 10-byte gzip
header until the stream ends). Since 0.46.0 GZip leaves `text/event-stream` alone.

No timers: the endpoint's generator, when it is asked for event 1 (so event 0's
send() has returned), decodes what the server has received so far.

Run: python H-gzip-holds-back-event-stream.py [asyncio|trio]
exit 1 = event 0 had not reached the client (decoded) when event 1 was made.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message

EVENTS = [b"data: 0\n\n", b"data: 1\n\n"]
received: list[bytes] = []  # the body bytes the server got, in order
seen_at_event_1: list[bytes] = []


def decoded(data: bytes) -> bytes:
    """What a client can decode of a gzip stream so far (all of it if not gzip)."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    return zlib.decompressobj(wbits=31).decompress(data)


async def endpoint(request: Request) -> Response:
    async def events() -> AsyncIterator[bytes]:
        yield EVENTS[0]
        seen_at_event_1.append(decoded(b"".join(received)))
        yield EVENTS[1]

    return StreamingResponse(events(), media_type="text/event-stream")


async def main() -> int:
    app = Starlette(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(GZipMiddleware)],  # the defaults
    )
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"accept-encoding", b"gzip")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    headers: list[tuple[bytes, bytes]] = []

    async def receive() -> Message:
        if requests:
            return requests.pop(0)
        await anyio.sleep_forever()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])
        elif message["type"] == "http.response.body":
            received.append(message.get("body", b""))

    print("expected: event 0 reaches the client before the endpoint makes event 1")
    await app(scope, receive, send)
    encoding = dict(headers).get(b"content-encoding", b"identity").decode()
    raw = len(received[0]) if received else 0
    print(f"content-encoding: {encoding}; first body message: {raw} bytes")
    print(f"decoded by the client when event 1 was made: {seen_at_event_1[0]!r}")
    print(f"decoded at the end: {decoded(b''.join(received))!r}")
    if EVENTS[0] not in seen_at_event_1[0]:
        print("BUG REPRODUCED (GZip held event 0 back)")
        return 1
    print("event 0 was there in time")
    return 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    sys.exit(anyio.run(main, backend=backend))
