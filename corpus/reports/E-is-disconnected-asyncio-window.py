"""E: asyncio and trio disagree on what Request.is_disconnected() takes from receive().

`Request.is_disconnected()` calls `receive()` inside a cancel scope it has already
cancelled ("If message isn't immediately available, move on"). On trio a receive()
that has to wait is aborted at once. On asyncio, since anyio 4.0.0 (PR #595: "cancel
scopes will defer cancelling tasks that are scheduled to resume with a finished
future"), a task that cancels its own scope is cancelled one event-loop pass later,
and not at all if what it waits for completes in that pass: the receive() then
returns a message that arrived *after* the poll, and is_disconnected() consumes it.

With a hypercorn-like server (http.disconnect is sent once, then receive() blocks),
a client that hangs up in that pass makes the poll eat the only http.disconnect: the
endpoint's `await request.body()` then waits forever on asyncio, while on trio it
gets the disconnect (ClientDisconnect) and the app returns. When the disconnect is
already queued before the poll, both backends hang (the Starlette bug underneath).

Run: python E-is-disconnected-asyncio-window.py [asyncio|trio]
exit 1 = on this backend, the app hangs when the client hangs up right after the poll.
Without an argument both backends run, and exit 1 = they disagree.
No timers, no wall-clock waits: a hang is "the app has not returned after 200
scheduler passes", with every other task finished or blocked.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Scope

PASSES = 200  # scheduler passes after which an app that has not returned is stuck


async def anyio_only() -> str:
    """The anyio behaviour alone: a wait in an already-cancelled scope, on an event
    that another task sets in the next loop pass."""
    event = anyio.Event()

    async def setter() -> None:
        event.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(setter)  # its first step runs after we block
        with anyio.CancelScope() as scope:
            scope.cancel()
            await event.wait()
            return "the wait completed"
    return "the wait was cancelled"


class Server:
    """hypercorn-like: the request body has not arrived yet; once the client is gone,
    receive() returns http.disconnect once, then blocks forever."""

    def __init__(self) -> None:
        self.gone = False
        self.disconnects_sent = 0
        self.changed = anyio.Event()

    def hang_up(self) -> None:
        self.gone = True
        self.changed.set()

    async def receive(self) -> Message:
        while not self.gone:
            await self.changed.wait()  # the body is on its way
        if self.disconnects_sent:
            await anyio.sleep_forever()  # hypercorn sends http.disconnect once
        self.disconnects_sent += 1
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        pass  # the client is gone: hypercorn ignores valid messages


SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.1"},
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
    "extensions": {},
}


async def serve(client_first: bool) -> tuple[bool | None, str]:
    """One request; the client hangs up before the app starts (``client_first``)
    or in the first loop pass after it (right after the middleware's poll)."""
    polled: list[bool] = []

    class PollDisconnect(BaseHTTPMiddleware):
        async def dispatch(
            self, request: Request, call_next: RequestResponseEndpoint
        ) -> Response:
            polled.append(await request.is_disconnected())
            return await call_next(request)

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(
        routes=[Route("/", endpoint)], middleware=[Middleware(PollDisconnect)]
    )
    server = Server()
    result = "the app has not returned: body() waits for a second http.disconnect"
    if client_first:
        server.hang_up()
    async with anyio.create_task_group() as tg:

        async def client() -> None:
            server.hang_up()  # runs in the first loop pass after the app blocks

        async def watchdog() -> None:
            for _ in range(PASSES):
                await anyio.lowlevel.checkpoint()
            app_scope.cancel()

        tg.start_soon(client)
        tg.start_soon(watchdog)
        with anyio.CancelScope() as app_scope:
            try:
                await app(dict(SCOPE), server.receive, server.send)
                result = "the app returned"
            except Exception as exc:
                result = f"the app returned by raising {type(exc).__name__}"
        tg.cancel_scope.cancel()
    return (polled[0] if polled else None), result


async def main() -> dict[str, object]:
    late = await serve(client_first=False)
    early = await serve(client_first=True)
    return {
        "anyio": await anyio_only(),
        "late": late,
        "early": early,
        "hangs": "not returned" in late[1],
    }


def run(backend: str) -> dict[str, object]:
    found: dict[str, object] = anyio.run(main, backend=backend)
    late, early = found["late"], found["early"]
    assert isinstance(late, tuple)
    assert isinstance(early, tuple)
    print(f"--- {backend}")
    print(
        "  anyio: a wait in an already-cancelled scope, the event set in the next "
        f"pass: {found['anyio']}"
    )
    print(
        "  client hangs up right after the poll: is_disconnected() returned "
        f"{late[0]}; {late[1]}"
    )
    print(
        "  client hung up before the poll:       is_disconnected() returned "
        f"{early[0]}; {early[1]}"
    )
    return found


if __name__ == "__main__":
    print(
        f"Starlette {version('starlette')}, anyio {version('anyio')}, "
        f"trio {version('trio')}"
    )
    print(
        "expected: both backends agree; is_disconnected() does not consume a "
        "message it had to wait for, and the app returns once the client is gone"
    )
    backends = sys.argv[1:] or ["asyncio", "trio"]
    results = {b: run(b) for b in backends}
    if len(backends) == 1:
        shows = bool(results[backends[0]]["hangs"])
        print("BUG REPRODUCED" if shows else "not reproduced on this backend")
    else:
        shows = results["asyncio"]["late"] != results["trio"]["late"]
        print("THE BACKENDS DISAGREE" if shows else "the backends agree")
    sys.exit(1 if shows else 0)
