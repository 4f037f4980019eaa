"""GZipMiddleware(minimum_size=0) gives an empty 204 or 304 response a 20-byte gzip
body (content-encoding: gzip, content-length: 20)

A standalone reproducer written by asgifuzz for its failure I11:no-body.

Run: python repro.py [asyncio|trio]   (exit status 1: the bug shows; 0: it does not)

It needs only starlette and anyio (and trio for the trio backend). A scripted server
and client call the app directly, on virtual time: a hang costs no wall time, and
the run replays the interleaving the fuzzer found.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope

EXPECTED = "a 1xx, 204 or 304 response carries no body (RFC 9110 15.3.5, 15.4.5)"
BUG = "GZipMiddleware(minimum_size=0) gives an empty 204 or 304 response a 20-byte gzip body (content-encoding: gzip, content-length: 20)"


# --- The app: the middleware and the endpoint of the failing case ------------


async def endpoint(request: Request) -> Response:
    return Response(status_code=204)


def make_app() -> ASGIApp:
    """The app of the failing case."""
    routes = [Route("/", endpoint, methods=["GET"])]
    middleware = [
        Middleware(GZipMiddleware, minimum_size=0),
    ]
    return Starlette(routes=routes, middleware=middleware)


# --- The server and the client: a uvicorn-like server, scripted ---------------

PATIENCE = 30  # virtual seconds the client waits for its response
LIMIT = 60  # virtual seconds after which an app that has not returned hangs
SCOPE: Scope = {
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
# The request body, as uvicorn delivers it.
BODY: list[Message] = [
    {"type": "http.request", "body": b"", "more_body": False},
]


class Server:
    """The server and the client of one request, and what the server saw."""

    def __init__(self) -> None:
        self.body = [dict(message) for message in BODY]  # not received yet
        self.gone = False  # the client has disconnected
        self.left_early = False  # ... before the response was complete
        self.timed_out = False  # ... because its patience ran out
        self.started = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.response_body = b""
        self.complete = False  # the server has the whole response
        self.returned = False  # the app returned or raised
        self.hung = False  # the app had not returned after LIMIT
        self.escaped: BaseException | None = None  # what the app raised
        self.changed = anyio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def disconnect(self) -> None:
        if not self.gone:
            self.gone = True
            self.left_early = not self.complete
            self.wake()

    async def receive(self) -> Message:
        if self.gone:
            self.body.clear()  # uvicorn drops the unread body
        if self.body:
            return self.body.pop(0)
        while not (self.gone or self.complete):
            await self.changed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone:
            return  # nothing reaches a client that is gone
        if self.complete:
            raise RuntimeError(
                f"Unexpected ASGI message {message['type']!r} sent, "
                "after response already completed."
            )
        if message["type"] == "http.response.start" and not self.started:
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body" and self.started:
            self.response_body += message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True
                self.wake()
        else:
            raise RuntimeError(
                f"Unexpected ASGI message {message['type']!r} sent (started={self.started})."
            )

    async def client(self) -> None:
        """The client waits for its response, PATIENCE virtual seconds at most."""
        with anyio.move_on_after(PATIENCE):
            while not (self.gone or self.complete):
                await self.changed.wait()
        if not (self.gone or self.complete):
            self.timed_out = True
            self.disconnect()

    def report(self) -> str:
        return (
            f"status={self.status} body={self.response_body[:60]!r} "
            f"complete={self.complete} escaped={self.escaped!r} "
            f"client gone={self.gone} timed out={self.timed_out} app hung={self.hung}"
        )


def only_cancellations(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation (anyio 3 on trio can wrap one in a group)."""
    members = getattr(exc, "exceptions", None)
    if members:
        return all(only_cancellations(e) for e in members)
    return isinstance(exc, anyio.get_cancelled_exc_class())


async def call_app(app: ASGIApp, server: Server) -> None:
    try:
        await app(dict(SCOPE), server.receive, server.send)
    except BaseException as exc:  # anyio 3's ExceptionGroup is not an Exception
        if only_cancellations(exc):
            raise  # the time limit: the app did not return
        server.escaped = exc
    server.returned = True


async def serve(make_app: Callable[[], ASGIApp]) -> Server:
    """Serve one request: the server calls the app while the client waits."""
    app = make_app()
    server = Server()
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            await call_app(app, server)
            tg.cancel_scope.cancel()
    server.hung = limit.cancel_called and not server.returned
    return server


# --- Virtual time --------------------------------------------------------------

SEED = 0  # seeds trio's scheduler


class VirtualTimeSelector(selectors.DefaultSelector):
    """Never sleeps: when no task can run, it moves the clock to the next timer."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self.virtual_loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer and no task can run: a deadlock
            for task in asyncio.all_tasks(self.virtual_loop):
                task.cancel()
        else:
            self.virtual_loop.now += timeout
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """asyncio on virtual time, like trio's MockClock(autojump_threshold=0)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=VirtualTimeSelector(self))

    def time(self) -> float:
        return self.now


def run(make_app: Callable[[], ASGIApp], backend: str) -> Server:
    """Serve one request on ``backend`` (asyncio or trio), on virtual time."""
    if backend == "trio":
        import trio
        import trio.testing
        from trio._core import _run

        # trio runs each batch of ready tasks in random order. In its deterministic
        # mode (private; trio's Hypothesis plugin switches it on), seeded with the
        # case's seed, it replays the interleaving the fuzzer found.
        _run._ALLOW_DETERMINISTIC_SCHEDULING = True
        _run._r.seed(SEED)
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(serve, make_app, clock=clock)
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(serve(make_app))


def bug_shows(backend: str) -> bool:
    """Run the case on ``backend``; whether the bug shows."""
    server = run(make_app, backend)
    print(f"observed: {server.report()}")
    print(f"status {server.status}, body {server.response_body!r}")
    no_content = server.status is not None and (
        server.status < 200 or server.status in (204, 304)
    )
    return no_content and bool(server.response_body)


def main() -> int:
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    print(f"Starlette {version('starlette')}, anyio {version('anyio')}, on {backend}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
    shows = bug_shows(backend)
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())
