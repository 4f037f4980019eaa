"""B: BaseHTTPMiddleware turns a failed StreamingResponse into a complete-looking one.

The endpoint's async generator yields one chunk, then raises. Without middleware the
server never receives a final `http.response.body` (more_body=False), so it can
abort the connection and the client sees a truncated response. With a pass-through
BaseHTTPMiddleware the server receives `more_body=False` (chunked terminator /
HTTP/2 END_STREAM: the client thinks the truncated body is whole) and only then
does the exception escape the app.

Run: python B-bhm-failed-stream-looks-complete.py [asyncio|trio]  (exit 1 = bug shows)
No timers are used.
"""
from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message


class Server:
    """uvicorn-like: body first (no checkpoint), then block until the client goes
    or the response is complete, then http.disconnect on every later call."""

    def __init__(self) -> None:
        self.queue: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]
        self.complete = False
        self.changed = anyio.Event()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.queue:
            return self.queue.pop(0)
        while not self.complete:
            await self.changed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.complete = True
            self.changed.set()


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


async def endpoint(request: Request) -> Response:
    async def gen() -> AsyncIterator[bytes]:
        yield b"first chunk;"
        raise ValueError("the stream failed halfway")

    return StreamingResponse(gen())


SCOPE: Message = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
    "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "",
    "query_string": b"", "headers": [(b"host", b"testserver")],
    "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
}


async def run(label: str, middleware: list[Middleware]) -> bool:
    """Return True when the server saw a complete response although the app failed."""
    app = Starlette(routes=[Route("/", endpoint)], middleware=middleware)
    server = Server()
    escaped: BaseException | None = None
    try:
        await app(dict(SCOPE), server.receive, server.send)
    except Exception as exc:  # noqa: BLE001 - we want to see what escapes
        escaped = exc
    print(f"--- {label}")
    for m in server.sent:
        print("  server got:", {k: v for k, v in m.items() if k != "headers"})
    print(f"  escaped from app: {escaped!r}")
    print(f"  response complete at the server: {server.complete}")
    return escaped is not None and server.complete


async def main() -> int:
    plain = await run("no middleware", [])
    bhm = await run("pass-through BaseHTTPMiddleware", [Middleware(PassThrough)])
    print("expected: the failed stream is never terminated with more_body=False"
          " (with or without middleware)")
    print(f"happened: no middleware -> complete={plain}; with BaseHTTPMiddleware -> complete={bhm}")
    print("BUG REPRODUCED" if bhm and not plain else "not reproduced")
    return 1 if bhm and not plain else 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    sys.exit(anyio.run(main, backend=backend))
