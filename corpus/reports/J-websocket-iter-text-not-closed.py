"""WebSocket.iter_text() (and iter_bytes, iter_json) is an async generator: an
exception in the documented async-for loop leaves it open (trio: ResourceWarning;
asyncio: aclose() runs in a task after the app returned)

A standalone reproducer written by asgifuzz for its failure I7:asyncgen.

Run: python repro.py [asyncio|trio]   (exit status 1: the bug shows; 0: it does not)

It needs only starlette and anyio (and trio for the trio backend). A scripted server
and client call the app directly, on virtual time: a hang costs no wall time, and
the run replays the interleaving the fuzzer found.
"""

from __future__ import annotations

import asyncio
import gc
import math
import selectors
import sys
import warnings
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Message, Scope
from starlette.websockets import WebSocket

EXPECTED = "nothing leaks: no ResourceWarning (asyncgen) after the run and a collection"
BUG = "WebSocket.iter_text() (and iter_bytes, iter_json) is an async generator: an exception in the documented async-for loop leaves it open (trio: ResourceWarning; asyncio: aclose() runs in a task after the app returned)"


def same(a: BaseException, b: BaseException) -> bool:
    """Whether ``a`` is ``b``, or a copy of group ``b`` (as split() and derive() make)."""
    if a is b:
        return True
    inside = getattr(a, "exceptions", None) == getattr(b, "exceptions", ())
    return type(a) is type(b) and inside and str(a) == str(b)


def forget_tracebacks(exc: BaseException | None) -> None:
    """Drop the frames that ``exc``, its causes, contexts and members keep alive."""
    todo, done = [exc], set()
    while todo:
        e = todo.pop()
        if e is not None and id(e) not in done:
            done.add(id(e))
            e.__traceback__ = None
            todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]


def only_cancellations(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation (anyio 3 on trio can wrap one in a group)."""
    members = getattr(exc, "exceptions", None)
    if members:
        return all(only_cancellations(e) for e in members)
    return isinstance(exc, anyio.get_cancelled_exc_class())


# --- The app: the middleware and the endpoint of the failing case ------------


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():  # as Starlette's docs write it
        await websocket.send_text(text)


def make_app() -> ASGIApp:
    """The app of the failing case."""
    routes = [WebSocketRoute("/ws", endpoint)]
    middleware = []
    return Starlette(routes=routes, middleware=middleware)


# --- The server and the client: a uvicorn-like server, scripted ---------------

LIMIT = 60  # virtual seconds after which an app that has not returned hangs
PATIENCE = 1  # virtual seconds the client waits for the endpoint before a step
SCOPE: Scope = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "scheme": "ws",
    "path": "/ws",
    "raw_path": b"/ws",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"testserver"), (b"connection", b"Upgrade"), (b"upgrade", b"websocket"), (b"sec-websocket-version", b"13"), (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")],
    "client": ("127.0.0.1", 50000),
    "server": ("testserver", 80),
    "subprotocols": [],
    "extensions": {"websocket.http.response": {}},
}
# The client's script: (what, payload, after how many of the endpoint's frames, code,
# reason); it leaves with a close or a drop (1006), or closes 1000, "done" once idle.
STEPS: list[tuple[str, Any, int, int, str]] = [
    ("text", "hi", 0, 1000, ""),
    ("close", "", 0, 1000, ""),
]
# What uvicorn does (asgifuzz's profile, measured on the real server): the code of
# a dropped client's websocket.disconnect, whether the client's close code and
# reason and the app's close reason get through, the code the app sees once it
# closed (None: the one the client echoed), what a later receive() gives (never,
# same, lost, always), what send() raises once the client is gone / after the
# app's close / for an unoffered subprotocol (None: nothing), the handshake status
# when the app returns / raises without answering, and the close code when it
# returns / raises after accepting.
PROFILE: dict[str, Any] = {
    "drop_code": 1005,
    "client_code": True,
    "client_reason": True,
    "close_reason": True,
    "closed_code": None,
    "repeat": "lost",
    "gone_error": "ClientDisconnected",
    "closed_error": "RuntimeError",
    "subprotocol_error": "LocalProtocolError",
    "unanswered_status": 500,
    "raised_status": 500,
    "return_close": 1006,
    "raise_close": 1006,
}


class ClientDisconnected(OSError):
    """What the server raises from send() once the client is gone (uvicorn)."""


class Disconnected(RuntimeError):
    """What daphne raises from send() after the app closed (autobahn's)."""


class LocalProtocolError(Exception):
    """What uvicorn (wsproto) raises for a subprotocol the client did not offer."""


class UnexpectedMessageError(Exception):
    """What hypercorn raises on an out-of-order message."""


ERRORS = {e.__name__: e for e in (ClientDisconnected, Disconnected, LocalProtocolError)}
ERRORS |= {"UnexpectedMessageError": UnexpectedMessageError}
ERRORS |= {"Exception": Exception, "RuntimeError": RuntimeError}


def fail(error: str | None, why: str) -> None:
    if error is not None:
        raise ERRORS[error](why)


class Server:
    """Both ends of one WebSocket connection, and what the client saw."""

    def __init__(self) -> None:
        # handshake, then open, closed (by the app), rejected (403), denial,
        # denied, error (500).
        self.phase = "handshake"
        self.connected = False
        self.gone = False  # the client has left
        self.left_open = False  # ... an open connection
        self.left: tuple[int, str] | None = None  # its close code and reason
        self.inbox: list[Message] = []  # its frames, not received yet
        self.received: list[Any] = []  # the endpoint's frames it got
        self.server_close: tuple[int, str] | None = None
        self.disconnects = 0  # websocket.disconnect messages given to the app
        self.first: Message = {}  # the first of them
        self.returned = False  # the app returned or raised
        self.hung = False  # the app had not returned after LIMIT
        self.escaped: BaseException | None = None  # what the app raised
        self.changed = anyio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, ready: Callable[[], object], patience: float = math.inf) -> None:
        with anyio.move_on_after(patience):
            while not ready():
                await self.changed.wait()

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        states = ("handshake", "denial", "open")
        await self.until(lambda: self.inbox or self.gone or self.phase not in states)
        if self.inbox and self.phase == "open":
            return self.inbox.pop(0)
        if not self.disconnects:
            self.disconnects, self.first = 1, self.disconnect()
            return dict(self.first)
        repeat = PROFILE["repeat"]
        dropped = self.left is not None and self.left[0] == 1006
        if repeat == "never" or (repeat == "lost" and (self.disconnects > 1 or dropped)):
            await anyio.sleep_forever()  # uvicorn gives no more
        self.disconnects += 1
        if repeat == "same":
            return dict(self.first)
        return {"type": "websocket.disconnect", "code": 1005}

    def disconnect(self) -> Message:
        """The first websocket.disconnect: for the app's close, the client's close
        or drop, or a client gone during the handshake."""
        if self.phase == "closed" and self.server_close is not None:
            if PROFILE["closed_code"] is not None:
                return {"type": "websocket.disconnect", "code": PROFILE["closed_code"]}
            return self.with_reason(*self.server_close)
        if self.left is None or not self.left_open:
            return {"type": "websocket.disconnect", "code": 1006}
        if self.left[0] == 1006:
            return {"type": "websocket.disconnect", "code": PROFILE["drop_code"]}
        if not PROFILE["client_code"]:
            return {"type": "websocket.disconnect", "code": 1006}
        return self.with_reason(*self.left)

    def with_reason(self, code: int, reason: str) -> Message:
        message: Message = {"type": "websocket.disconnect", "code": code}
        if PROFILE["client_reason"]:
            message["reason"] = reason
        return message

    async def send(self, message: Message) -> None:
        kind, phase = message.get("type"), self.phase
        if phase == "closed":
            fail(PROFILE["closed_error"], f"{kind!r} after the app closed")
            return
        if self.gone and phase == "open":
            fail(PROFILE["gone_error"], "the client has disconnected")
            return  # nothing reaches a client that is gone
        if phase == "handshake" and kind == "websocket.accept":
            subprotocol = message.get("subprotocol")
            if subprotocol is not None and subprotocol not in SCOPE["subprotocols"]:
                fail(PROFILE["subprotocol_error"], f"Invalid Subprotocol {subprotocol!r}")
            self.phase = "open"
            self.wake()
        elif phase == "handshake" and kind == "websocket.close":
            self.phase = "rejected"
            self.wake()
        elif phase == "handshake" and kind == "websocket.http.response.start":
            self.phase = "denial"
        elif phase == "denial" and kind == "websocket.http.response.body":
            if not message.get("more_body", False):
                self.phase = "denied"
                self.wake()
        elif phase == "open" and kind == "websocket.send":
            data = message.get("bytes")
            self.received.append(data if data is not None else message.get("text", ""))
            self.wake()
        elif phase == "open" and kind == "websocket.close":
            self.phase = "closed"
            reason = (message.get("reason") or "") if PROFILE["close_reason"] else ""
            self.server_close = (int(message.get("code", 1000)), reason)
            self.wake()
        else:
            error = f"Unexpected ASGI message {kind!r} in websocket state {phase!r}."
            raise RuntimeError(error)

    def app_ended(self, raised: bool) -> None:
        """The app returned or raised: a handshake it never answered ends with the
        profile's status (None: no answer), an open connection closes."""
        if self.phase in ("handshake", "denial"):
            status = PROFILE["raised_status" if raised else "unanswered_status"]
            if status is not None:
                self.phase = "error"
                self.wake()
        elif self.phase == "open" and not self.gone:
            self.phase = "closed"  # the server closes the connection
            self.server_close = (PROFILE["raise_close" if raised else "return_close"], "")
            self.wake()

    def leave(self, what: str, code: int, reason: str) -> None:
        self.gone = True
        self.left_open = self.phase == "open"
        self.left = (1006, "") if what == "drop" else (code, reason)
        self.wake()

    async def client(self) -> None:
        """Each step once the handshake is over and the client has seen ``after``
        of the endpoint's frames (or waited PATIENCE for them)."""
        for what, payload, after, code, reason in STEPS:
            if after < 0:
                return  # it left at the connect (see receive)
            await self.until(lambda: self.phase != "handshake")
            await self.until(
                lambda a=after: len(self.received) >= a or self.phase != "open", PATIENCE
            )
            if self.phase != "open":
                return
            if what in ("close", "drop"):
                self.leave(what, code, reason)
                return
            self.inbox.append({"type": "websocket.receive", what: payload})
            self.wake()
        await self.until(lambda: self.phase != "handshake")
        await self.until(lambda: self.phase != "open", PATIENCE)
        if self.phase == "open":
            self.leave("close", 1000, "done")

    def report(self) -> str:
        return (
            f"phase={self.phase} frames to the client={self.received!r} "
            f"server close={self.server_close} client left={self.left} "
            f"escaped={self.escaped!r} app hung={self.hung}"
        )


async def serve(make_app: Callable[[], ASGIApp]) -> Server:
    """Serve one session: the server calls the app while the client plays its steps."""
    app = make_app()
    server = Server()
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            try:
                await app(dict(SCOPE), server.receive, server.send)
            except BaseException as exc:  # anyio 3's ExceptionGroup is not an Exception
                if only_cancellations(exc):
                    raise  # the time limit: the app did not return
                server.escaped = exc
            server.returned = True
            server.app_ended(raised=server.escaped is not None)
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Nothing is collected during the run; once the tracebacks (which keep the
        # app's frames alive) are dropped, one collection finds what the run leaked.
        gc.collect()
        gc.disable()
        try:
            server = run(make_app, backend)
            forget_tracebacks(server.escaped)
            gc.collect()
        finally:
            gc.enable()
    print(f"observed: {server.report()}")
    bug = False
    for warning in caught:
        text = f"{warning.category.__name__}: {warning.message}"
        leak = issubclass(warning.category, (ResourceWarning, RuntimeWarning))
        if leak and "Async generator" in text:
            print(text)
            bug = True
    return bug


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
