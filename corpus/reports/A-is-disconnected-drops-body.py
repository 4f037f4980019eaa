"""A: Request.is_disconnected() consumes and drops a buffered http.request message.

A BaseHTTPMiddleware calls `await request.is_disconnected()` before `call_next`.
The server's receive() returns an already-buffered body message without reaching
a checkpoint (as uvicorn's does: it awaits an asyncio.Event that is already set),
so the pre-cancelled CancelScope in is_disconnected() does not stop it and the
message is thrown away.

Run: python A-is-disconnected-drops-body.py [asyncio|trio]   (exit 1 = bug shows)
The hang case is detected with anyio.move_on_after(1) (1 s wall clock, the only
timer used): the endpoint waits for a body message the server already delivered.
"""
from __future__ import annotations

import sys

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message


class Server:
    """uvicorn-like: buffered body first (no checkpoint), then block until the
    client goes or the response is complete, then http.disconnect forever."""

    def __init__(self, chunks: list[bytes], checkpoint: bool = False) -> None:
        self.checkpoint = checkpoint  # control: a receive() that always checkpoints
        self.queue: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        self.gone = False
        self.complete = False
        self.changed = anyio.Event()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.checkpoint:
            await anyio.lowlevel.checkpoint()
        if self.queue and not self.gone:
            return self.queue.pop(0)  # already buffered: returns without a checkpoint
        while not (self.gone or self.complete):
            await self.changed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone:
            return
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.complete = True
            self.changed.set()


class CheckDisconnect(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        await request.is_disconnected()
        return await call_next(request)


async def echo(request: Request) -> Response:
    return Response(await request.body())


app = Starlette(routes=[Route("/", echo, methods=["POST"])], middleware=[Middleware(CheckDisconnect)])
SCOPE: Message = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
    "method": "POST", "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "",
    "query_string": b"", "headers": [(b"host", b"testserver"), (b"content-length", b"4")],
    "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
}


async def run(chunks: list[bytes], checkpoint: bool = False) -> tuple[bytes | None, bool]:
    """Return (response body or None, hung?)."""
    server = Server(chunks, checkpoint)
    returned = False
    with anyio.move_on_after(1):  # hang detector, 1 s wall clock
        await app(dict(SCOPE), server.receive, server.send)
        returned = True
    body = b"".join(m.get("body", b"") for m in server.sent if m["type"] == "http.response.body")
    return (body if returned else None), not returned


async def main() -> int:
    bug = False
    body, hung = await run([b"ab", b"cd"])
    print(f"2-message body b'ab'+b'cd': expected endpoint to read b'abcd'; it read {body!r}")
    bug |= body != b"abcd"
    body, hung = await run([b"abcd"])
    if hung:
        print("1-message body b'abcd': expected b'abcd'; the app HUNG (no response after 1 s):"
              " request.body() waits for a message is_disconnected() already took")
    else:
        print(f"1-message body b'abcd': expected b'abcd'; endpoint read {body!r}")
    bug |= hung or body != b"abcd"
    ok = await run([b"ab", b"cd"], checkpoint=True)
    print(f"control, receive() checkpoints before returning: endpoint read {ok[0]!r}")
    print("BUG REPRODUCED" if bug else "not reproduced")
    return 1 if bug else 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    sys.exit(anyio.run(main, backend=backend))
