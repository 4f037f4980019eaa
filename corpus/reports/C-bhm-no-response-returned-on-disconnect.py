"""C: RuntimeError("No response returned.") from BaseHTTPMiddleware when the client is
gone before a StreamingResponse has sent http.response.start.

StreamingResponse (spec < 2.4) runs stream_response in a task group and
listen_for_disconnect inline. When receive() hands it http.disconnect without a
checkpoint, it cancels stream_response inside send(http.response.start), i.e. in
BaseHTTPMiddleware's MemoryObjectSendStream.send(), which checkpoints before it
delivers. The inner app returns normally; call_next() gets EndOfStream.

Scenario 1: the endpoint is busy while the client hangs up (receive() is
BaseHTTPMiddleware's receive_or_disconnect, whose task group adds checkpoints:
NOT reproduced on Starlette >= 0.21, reproduced on 0.20.4).
Scenario 2: a pure-ASGI layer between BaseHTTPMiddleware and the route reads the
body ahead and replays it (no checkpoint); the client disconnects mid-body.

Run: python C-bhm-no-response-returned-on-disconnect.py [asyncio|trio]  (exit 1 =
bug shows). No timers; each scenario runs RUNS times (trio's order is random).
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RUNS = 20


class Server:
    """uvicorn-like: queued body first (no checkpoint); then block until the client
    goes; then http.disconnect on every call. send() after a disconnect: no-op."""

    def __init__(self, queue: list[Message]) -> None:
        self.queue, self.gone = queue, False
        self.changed, self.blocked = anyio.Event(), anyio.Event()

    def disconnect(self) -> None:
        self.gone = True
        self.changed.set()

    async def receive(self) -> Message:
        if self.queue and not self.gone:
            return self.queue.pop(0)
        while not self.gone:
            self.blocked.set()
            await self.changed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        pass  # nothing reaches a gone client; the app is never cut off


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


class ReadAhead:
    """Pure ASGI: read the whole request (e.g. to log it), then replay it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pending: list[Message] = []
        while not pending or (pending[-1]["type"] == "http.request" and pending[-1].get("more_body")):
            pending.append(await receive())

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


SCOPE: Message = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
    "method": "POST", "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "",
    "query_string": b"", "headers": [(b"host", b"testserver")],
    "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
}


async def once(read_ahead: bool) -> str:
    entered, proceed = anyio.Event(), anyio.Event()

    async def endpoint(request: Request) -> Response:
        entered.set()
        await proceed.wait()  # "slow work"; the client hangs up meanwhile

        async def gen() -> AsyncIterator[bytes]:
            yield b"hello"

        return StreamingResponse(gen())

    layers = [Middleware(PassThrough)] + ([Middleware(ReadAhead)] if read_ahead else [])
    app = Starlette(routes=[Route("/", endpoint, methods=["POST"])], middleware=layers)
    # Scenario 2: half the body has arrived; the client goes while the rest is awaited.
    server = Server([{"type": "http.request", "body": b"ab", "more_body": read_ahead}])

    async def client() -> None:
        await (server.blocked if read_ahead else entered).wait()
        server.disconnect()
        proceed.set()

    outcome = "returned normally"
    async with anyio.create_task_group() as tg:
        tg.start_soon(client)
        try:
            await app(dict(SCOPE), server.receive, server.send)
        except Exception as exc:  # noqa: BLE001 - we want to see what escapes
            outcome = f"raised {exc!r}"
    return outcome


async def main() -> int:
    print("expected: the app never raises RuntimeError('No response returned.') (a 500)")
    bug = False
    for read_ahead in (False, True):
        name = "2: read-ahead ASGI layer" if read_ahead else "1: busy endpoint only"
        outcomes = Counter([await once(read_ahead) for _ in range(RUNS)])
        for outcome, n in outcomes.items():
            print(f"scenario {name}: {n}/{RUNS} {outcome}")
        bug |= any("No response returned" in o for o in outcomes)
    print("BUG REPRODUCED" if bug else "not reproduced")
    return 1 if bug else 0


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    sys.exit(anyio.run(main, backend=backend))
