"""A pass-through BaseHTTPMiddleware drops the response's trailers while the scope
still advertises http.response.trailers.

A standalone reproducer for asgifuzz's failure X1:lost
(corpus/bhm-drops-response-trailers.json).

Run: python I-bhm-drops-response-trailers.py [asyncio|trio]
(exit status 1: the bug shows; 0: it does not). Needs only starlette and anyio (and
trio for the trio backend). The server is scripted: it advertises
http.response.trailers, as hypercorn does on HTTP/2, and records what it gets.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send


class TrailersResponse(Response):
    """Announces trailers and sends one after the body (as gRPC does its status)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        )
        await send({"type": "http.response.body", "body": b"hello"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"grpc-status", b"0")],
                "more_trailers": False,
            }
        )


async def endpoint(request: Request) -> Response:
    return TrailersResponse()


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        return await call_next(request)


app = Starlette(
    routes=[Route("/", endpoint)], middleware=[Middleware(PassThrough)]
)


async def main() -> list[Message]:
    got: list[Message] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.1"},
        "http_version": "2",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"te", b"trailers")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {"http.response.trailers": {}},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        got.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return got


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    messages = anyio.run(main, backend=backend)
    start = messages[0]
    trailers = [m for m in messages if m["type"] == "http.response.trailers"]
    print("server got:", [m["type"] for m in messages])
    if not start.get("trailers") or not trailers:
        print(
            "BUG: the endpoint announced trailers and sent grpc-status: 0; the server "
            f"got trailers={start.get('trailers', False)!r} on the start and "
            f"{len(trailers)} trailers message(s)"
        )
        sys.exit(1)
    print("ok: the trailers reached the server")
