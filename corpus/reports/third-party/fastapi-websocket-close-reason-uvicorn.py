"""FastAPI 0.165: a websocket route's validation error closes the connection with
reason=a list (jsonable_encoder(exc.errors())), not a str of at most 123 bytes

Written by asgifuzz for its failure W1:reason, on a real uvicorn.

Run: python repro.py   (exit status 1: the bug shows; 0: it does not)
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from typing import Any

import uvicorn
from fastapi_ws_app import app as user_app
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from wsproto import ConnectionType, WSConnection, events
from wsproto.connection import ConnectionState
from wsproto.utilities import RemoteProtocolError

EXPECTED = (
    "every message at every boundary follows the ASGI WebSocket protocol (reason)"
)
BUG = "FastAPI 0.165: a websocket route's validation error closes the connection with reason=a list (jsonable_encoder(exc.errors())), not a str of at most 123 bytes"


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


# --- A real server and a real client -------------------------------------------

TIMEOUT = 2.0  # wall-clock seconds the client waits for the server at each step
PATH = "/ws/a"
SUBPROTOCOLS: list[str] = []
HEADERS: list[tuple[bytes, bytes]] = []
# The client's script: (what, payload, after how many of the endpoint's frames, code,
# reason); it leaves with a close or a drop (no close frame), or closes 1000, "done" once
# idle. A step with after=-1 leaves right after the handshake request (a drop: no
# close frame can come before the handshake's answer).
STEPS: list[tuple[str, Any, int, int, str]] = []
INNER = "into the app"  # the innermost boundary
SCOPE: Scope = {}  # the websocket scope the real server gave the app
ENDED = threading.Event()  # the app returned or raised
ESCAPED: list[BaseException] = []  # what it raised


def watched(app: ASGIApp) -> ASGIApp:
    """``app``, with GET /.ready answered here (the client waits for it), and
    what escapes a websocket session kept."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/.ready":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        SCOPE.update(scope)
        SEEN["received"], SEEN["sent"], SEEN["raised"] = {}, {}, []
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            ESCAPED.append(exc)
            raise
        finally:
            ENDED.set()

    return wrapped


LISTENING: list[socket.socket] = []  # kept open while their servers serve


def serve(app: ASGIApp) -> int:
    """Serve ``app`` with uvicorn on a free loopback port, in a daemon thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    LISTENING.append(sock)
    config = uvicorn.Config(
        watched(app), lifespan="off", ws="wsproto", log_level="critical"
    )
    server = uvicorn.Server(config)
    run = partial(server.run, sockets=[sock])
    threading.Thread(target=run, daemon=True).start()
    port = sock.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /.ready HTTP/1.1\r\nhost: x\r\n\r\n")
        if not conn.recv(64).startswith(b"HTTP/1.1 204"):
            raise SystemExit("uvicorn did not start")
    return port


class Client:
    """A real WebSocket client (wsproto over a socket), and what it saw."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.status: int | None = None  # 101 once accepted
        self.received: list[Any] = []  # the endpoint's frames it got
        self.partial: Any = None  # a frame still arriving
        self.server_close: tuple[int, str] | None = None
        self.left: tuple[int, str] | None = None  # its own close (1006: a drop)
        self.open = self.done = False

    def send(self, event: Any) -> None:
        try:
            self.sock.sendall(self.ws.send(event))
        except OSError:  # reset by the server
            self.open, self.done = False, True

    def pump(self, patience: float) -> bool:
        """Read and handle what arrives within ``patience`` seconds; False at
        EOF or once the time is up."""
        self.sock.settimeout(patience)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            data = b""  # reset by the server: the same as a close here
        try:
            self.ws.receive_data(data or None)
        except RemoteProtocolError:  # closed mid-handshake: no (more) answer
            self.done = True
            return False
        for event in self.ws.events():
            if isinstance(event, events.AcceptConnection):
                self.open, self.status = True, 101
            elif isinstance(event, events.RejectConnection):
                self.status, self.done = event.status_code, not event.has_body
            elif isinstance(event, events.RejectData):
                self.done = event.body_finished
            elif isinstance(event, events.Message):
                empty = b"" if isinstance(event.data, bytes) else ""
                self.partial = (self.partial or empty) + event.data
                if event.message_finished:
                    self.received.append(self.partial)
                    self.partial = None
            elif isinstance(event, events.CloseConnection):
                frame = self.ws.state is ConnectionState.REMOTE_CLOSING
                if frame or self.open:  # a close frame, or the end of an open one
                    self.server_close = (event.code, event.reason or "")
                if frame:
                    self.send(event.response())
                self.open, self.done = False, True
        return bool(data) and not self.done

    def leave(self, what: str, code: int, reason: str) -> None:
        if what == "drop" or not self.open:
            self.left = (1006, "")
            self.sock.shutdown(socket.SHUT_RDWR)  # gone, without a close frame
            self.done = True
            return
        self.left = (code, reason)
        self.send(events.CloseConnection(code, reason))
        self.open = False

    def report(self) -> str:
        return (
            f"status={self.status} frames={self.received!r} "
            f"server close={self.server_close} client left={self.left}"
        )


def play(port: int) -> Client:
    """Open the WebSocket and play the client's steps."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = Client(sock)
    handshake = {"subprotocols": SUBPROTOCOLS, "extra_headers": HEADERS}
    client.send(events.Request(host="testserver", target=PATH, **handshake))
    if STEPS and STEPS[0][2] < 0:
        client.leave("drop", 1006, "")  # right after its handshake request
        return client
    while not (client.open or client.done) and client.pump(TIMEOUT):
        pass
    for what, payload, after, code, reason in STEPS:
        while client.open and len(client.received) < after and client.pump(TIMEOUT):
            pass
        if not client.open:
            break
        if what in ("close", "drop"):
            client.leave(what, code, reason)
            break
        message = events.TextMessage if what == "text" else events.BytesMessage
        client.send(message(payload))
    while client.open and client.pump(TIMEOUT):
        pass  # the server may close
    if client.open:
        client.leave("close", 1000, "done")
    while not client.done and client.pump(TIMEOUT):
        pass
    sock.close()
    return client


class Observed:
    """What the client saw, and what the app did, for the checks."""

    def __init__(self, client: Client, hung: bool) -> None:
        self.client = client
        self.hung = hung  # the app had not returned TIMEOUT after the client was done
        self.escaped = ESCAPED[0] if ESCAPED else None
        self.gone = client.left is not None  # the client left (closed or dropped)

    def report(self) -> str:
        return f"{self.client.report()} escaped={self.escaped!r} app hung={self.hung}"


def run(make_app: Callable[[], ASGIApp], backend: str) -> Observed:
    """Serve the app with the real uvicorn (its own event loop: ``backend`` is
    the scripted reproducer's choice, unused here) and play the client."""
    client = play(serve(make_app()))
    return Observed(client, hung=not ENDED.wait(TIMEOUT))


def bug_shows(backend: str) -> bool:
    """Run the case on the real uvicorn; whether the bug shows."""
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
    print(f"Starlette {version('starlette')}, uvicorn {version('uvicorn')}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
    print("upstream: https://github.com/fastapi/fastapi/discussions/16197")
    shows = bug_shows("asyncio")
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())
