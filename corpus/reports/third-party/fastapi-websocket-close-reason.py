"""FastAPI 0.165: a websocket route's validation error closes the connection with
reason=a list (jsonable_encoder(exc.errors())), not a str of at most 123 bytes

A standalone reproducer written by asgifuzz for its failure W1:reason.

Run: python repro.py [asyncio|trio]   (exit status 1: the bug shows; 0: it does not)

It needs starlette and anyio (and trio for the trio backend), and the code it imports
from fastapi_ws_app, your own. A scripted server and client call the app directly, on virtual time: a hang costs no wall time, and
the run replays the interleaving the fuzzer found.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import sys
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import anyio
from fastapi_ws_app import app as user_app
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

EXPECTED = (
    "every message at every boundary follows the ASGI WebSocket protocol (reason)"
)
BUG = "FastAPI 0.165: a websocket route's validation error closes the connection with reason=a list (jsonable_encoder(exc.errors())), not a str of at most 123 bytes"
UPSTREAM = "https://github.com/fastapi/fastapi/discussions/16197"


def only_cancellations(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation (anyio 3 on trio can wrap one in a group)."""
    members = getattr(exc, "exceptions", None)
    if members:
        return all(only_cancellations(e) for e in members)
    return isinstance(exc, anyio.get_cancelled_exc_class())


class Tap:
    """Records the messages crossing one boundary, both ways; it adds no
    checkpoint, so it changes no interleaving."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = SEEN.setdefault("received", {}).setdefault(self.name, [])
        sent = SEEN.setdefault("sent", {}).setdefault(self.name, [])
        extensions = set(scope.get("extensions") or ())
        SEEN.setdefault("advertised", {})[self.name] = extensions

        async def tapped_receive() -> Message:
            message = await receive()
            received.append(message)
            return message

        async def tapped_send(message: Message) -> None:
            sent.append(message)
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)


def protocol_problems(
    sent: list[Message], received: list[Message], offered: list[str]
) -> list[tuple[str, str]]:
    """What breaks the ASGI WebSocket protocol in what one side sent and was
    given, as (tag, why): the spec's order of messages, close codes a peer may
    send (RFC 6455 7.4) and reasons of at most 123 bytes (5.5)."""
    found, state = [], "handshake"
    for i, m in enumerate(sent):
        kind, at = m.get("type"), f"(message #{i + 1} of {len(sent)})"
        code, reason = m.get("code", 1000), m.get("reason") or ""
        sendable = code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014
        sendable = isinstance(code, int) and (sendable or 3000 <= code <= 4999)
        if not str(kind).startswith("websocket."):
            found.append(("type", f"sent {kind!r} on a websocket scope {at}"))
        elif state in ("closed", "denied"):
            found.append(("after-close", f"sent {kind} after the {state} session {at}"))
        elif state == "handshake" and kind == "websocket.accept":
            if m.get("subprotocol") not in (None, *offered):
                found.append(("subprotocol", f"accepted {m['subprotocol']!r} {at}"))
            state = "open"
        elif state in ("handshake", "open") and kind == "websocket.close":
            if not sendable:
                found.append(("code", f"sent close code {code!r} {at}"))
            if not isinstance(reason, str):
                found.append(("reason", f"sent a close reason {reason!r} {at}"))
            elif len(reason.encode()) > 123:
                found.append(("reason", f"sent a close reason over 123 bytes {at}"))
            state = "closed"
        elif state == "handshake" and kind == "websocket.http.response.start":
            state = "denial"
        elif state == "denial" and kind == "websocket.http.response.body":
            state = "denial" if m.get("more_body", False) else "denied"
        elif state == "open" and kind == "websocket.send":
            if (m.get("bytes") is None) == (m.get("text") is None):
                found.append(("frame", f"sent neither or both of text, bytes {at}"))
        else:
            found.append(("order", f"sent {kind} in state {state!r} {at}"))
    if received and received[0].get("type") != "websocket.connect":
        found.append(("connect", f"was given {received[0].get('type')} first"))
    kinds = [m.get("type") for m in received]
    if "websocket.disconnect" in kinds:
        later = kinds[kinds.index("websocket.disconnect") :]
        if set(later) != {"websocket.disconnect"}:
            found.append(("after-disconnect", "was given a message after a disconnect"))
    return found


# What the app did, for the check at the end.
SEEN: dict[str, Any] = {}


# --- The app: the middleware and the endpoint of the failing case ------------


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await websocket.send_bytes(message["bytes"])
        else:
            await websocket.send_text(message.get("text") or "")


def make_app() -> ASGIApp:
    """The app of the failing case."""
    app: ASGIApp = user_app
    return Tap(app, name="into the app")


# --- The server and the client: a uvicorn-like server, scripted ---------------

LIMIT = 60  # virtual seconds after which an app that has not returned hangs
PATIENCE = 1  # virtual seconds the client waits for the endpoint before a step
SCOPE: Scope = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "scheme": "ws",
    "path": "/ws/a",
    "raw_path": b"/ws/a",
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
STEPS: list[tuple[str, Any, int, int, str]] = []
INNER = "into the app"  # the innermost boundary
# What uvicorn does (asgifuzz's profile, measured on the real server): the code of
# a dropped client's websocket.disconnect, whether the client's close code and
# reason and the app's close reason get through, the code the app sees once it
# closed (None: the one the client echoed), what a later receive() gives ("never",
# "same", "lost", "always"), what send() raises once the client is gone / after the
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
    SEEN.clear()
    SEEN["received"], SEEN["sent"] = {}, {}
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
    server = run(make_app, backend)
    print(f"observed: {server.report()}")
    bug = False
    for boundary, sent in SEEN["sent"].items():
        received = SEEN["received"][boundary]
        for tag, why in protocol_problems(sent, received, SCOPE["subprotocols"]):
            print(f"{boundary}: {why}")
            bug = bug or tag == "reason"
    return bug


def main() -> int:
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    print(f"Starlette {version('starlette')}, anyio {version('anyio')}, on {backend}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
    print(f"upstream: {UPSTREAM}")
    shows = bug_shows(backend)
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())
