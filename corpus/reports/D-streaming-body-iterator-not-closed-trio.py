"""D: StreamingResponse (and BaseHTTPMiddleware's _StreamingResponse) do not aclose()
their body iterator when the client disconnects mid-stream or send() raises.

The async generator is left suspended at a `yield`; its `finally` runs only when it
is garbage collected. On trio, that goes through trio's async-generator finalizer,
which emits "ResourceWarning: Async generator ... was garbage collected before it
had been exhausted". asyncio's finalizer hook closes it silently (same late close).

Run: python D-streaming-body-iterator-not-closed-trio.py [asyncio|trio]
exit 1 = a ResourceWarning about an unexhausted async generator was recorded.
No timers: the generator yields forever; the client hangs up after the 1st chunk.
"""
from __future__ import annotations

import contextlib
import gc
import sys
import warnings
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message


class Server:
    """uvicorn-like receive(); the client disconnects once the first body chunk is
    sent; send() checkpoints. After that, send() is a no-op (spec 2.3) or raises OSError (spec 2.4)."""

    def __init__(self, raise_on_send: bool) -> None:
        self.queue: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]
        self.gone, self.raise_on_send = False, raise_on_send
        self.changed = anyio.Event()

    async def receive(self) -> Message:
        if self.queue and not self.gone:
            return self.queue.pop(0)
        while not self.gone:
            await self.changed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()  # writing to a socket is a checkpoint
        if self.gone:
            if self.raise_on_send:
                raise OSError("client disconnected")
            return
        if message["type"] == "http.response.body" and message.get("body"):
            self.gone = True
            self.changed.set()


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


async def run(middleware: list[Middleware], spec: str) -> tuple[bool, bool]:
    """Return (generator's finally ran before app() returned, ran after gc)."""
    closed = False

    async def endpoint(request: Request) -> Response:
        async def numbers() -> AsyncIterator[bytes]:
            nonlocal closed
            try:
                i = 0
                while True:  # no await in here: it is always suspended at `yield`
                    yield b"%d\n" % i
                    i += 1
            finally:
                closed = True

        return StreamingResponse(numbers())

    app = Starlette(routes=[Route("/", endpoint)], middleware=middleware)
    scope: Message = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": spec}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "",
        "query_string": b"", "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    server = Server(raise_on_send=spec == "2.4")
    with contextlib.suppress(Exception):  # spec 2.4: ClientDisconnect escapes
        await app(scope, server.receive, server.send)
    at_return = closed
    del app, endpoint
    gc.collect()  # inside the event loop, so the loop's finalizer hook is used
    for _ in range(3):
        await anyio.lowlevel.checkpoint()  # let a scheduled aclose() run
    return at_return, closed


async def main() -> int:
    bug = False
    print("expected: the body iterator is closed when the response ends; no ResourceWarning")
    for label, mw, spec in [
        ("StreamingResponse, disconnect (spec 2.3)", [], "2.3"),
        ("StreamingResponse, send raises (spec 2.4)", [], "2.4"),
        ("pass-through BaseHTTPMiddleware, disconnect (spec 2.3)", [Middleware(PassThrough)], "2.3"),
        ("pass-through BaseHTTPMiddleware, send raises (spec 2.4)", [Middleware(PassThrough)], "2.4"),
    ]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            at_return, later = await run(mw, spec)
            gc.collect()
        agen = [str(w.message).split(". ")[0] for w in caught
                if w.category is ResourceWarning and "Async generator" in str(w.message)]
        print(f"--- {label}\n  endpoint generator's finally ran: before app() returned:"
              f" {at_return}; after gc: {later}\n  ResourceWarnings: {len(agen)}")
        for text in agen:
            print("   ", text)
        bug |= bool(agen)
    print("BUG REPRODUCED (ResourceWarning)" if bug else "no ResourceWarning recorded")
    return 1 if bug else 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    sys.exit(anyio.run(main, backend=backend))
