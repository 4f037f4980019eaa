"""G: on trio >= 0.22 with anyio 3, two exceptions in one BaseHTTPMiddleware's task
group come out of the middleware above it as AttributeError: 'NonBaseMultiError'
object has no attribute 'collapse' (anyio issue #474).

anyio 3's trio backend defines `class ExceptionGroup(anyio.ExceptionGroup,
trio.MultiError)` and raises `ExceptionGroup(exceptions)` when several tasks of a
task group fail. Since trio 0.22, `trio.MultiError.__new__` returns a
`NonBaseMultiError` instead when every exception is an `Exception`; that object is
not an instance of the class called, so `__init__` never runs and it has no
`collapse` attribute. The next trio nursery that is cancelled while this group
passes through it splits the group (`exc.split(Cancelled)`), and trio's
`MultiError.derive` reads `self.collapse`: AttributeError.

The app: a pass-through BaseHTTPMiddleware over one that raises after `call_next`
returned, over an endpoint whose StreamingResponse raises at its first chunk.

Run: python G-anyio3-trio022-multierror-no-collapse.py [asyncio|trio]
exit 1 = the app raised an AttributeError that no code of the app raised.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message


class Boom(Exception):
    """Raised on purpose by the app."""


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: RequestResponseEndpoint
    ) -> Response:
        return await call_next(request)


class RaiseAfter(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: RequestResponseEndpoint
    ) -> Response:
        await call_next(request)
        raise Boom("RaiseAfter, after call_next returned")


async def endpoint(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        raise Boom("the endpoint, at its first chunk")
        yield b""  # an async generator

    return StreamingResponse(chunks())


async def main() -> int:
    app = Starlette(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(PassThrough), Middleware(RaiseAfter)],
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
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop(0)
        await anyio.sleep_forever()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    print("expected: the app's own Boom (alone or in an exception group) comes out")
    escaped: BaseException | None = None
    try:
        await app(scope, receive, send)
    except BaseException as exc:  # what comes out is the point (a group, too)
        escaped = exc
    status = next(
        (m["status"] for m in sent if m["type"] == "http.response.start"), None
    )
    print(f"the server got status {status}; the app raised {escaped!r}")
    if isinstance(escaped, AttributeError):
        print("".join(traceback.format_exception(escaped)[-6:]).rstrip())
        print("BUG REPRODUCED (AttributeError from trio's MultiError.derive)")
        return 1
    print("no AttributeError: the app's own exceptions came out")
    return 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "trio"
    sys.exit(anyio.run(main, backend=backend))
