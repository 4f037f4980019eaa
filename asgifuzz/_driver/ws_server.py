"""The server and the client of a WebSocket run: the profiles and `FakeWsServer`.

What the profiles do was read from the servers' sources: uvicorn 0.54's
``protocols/websockets/websockets_impl.py`` (``asgi_send``/``asgi_receive``) and
hypercorn 0.18's ``protocol/ws_stream.py`` (``handle``/``app_send``); ``strict``
follows the ASGI spec 2.4/2.5 to the letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from asgifuzz._driver.server import ClientDisconnected, UnexpectedMessageError
from asgifuzz._types import Message
from asgifuzz.models import Case
from asgifuzz.models._record import Recorder
from asgifuzz.models._websocket import WS_SERVERS, Step

#: Virtual seconds the client waits for the endpoint's messages before a step,
#: and, once its script is done, for the server to close before it closes.
STEP_PATIENCE = 1.0
#: What a client that ran out of steps closes with.
IDLE_CLOSE = (1000, "done")


@dataclass(frozen=True)
class WsProfile:
    """How one server runs the WebSocket side of ASGI."""

    spec_version: str
    #: ``websocket.disconnect`` again on every later ``receive()`` (else once,
    #: then ``receive()`` blocks: hypercorn's queue is empty for ever).
    repeats: bool
    #: ``send()`` once the client is gone raises ``OSError`` (else a no-op).
    raises_when_gone: bool
    #: The client's close code reaches the app (hypercorn: 1006 while the app
    #: has not closed, 1000 after; no reason).
    client_code: bool
    #: An accepted subprotocol must be one the client offered (hypercorn raises).
    checks_subprotocol: bool


WS_PROFILES: dict[str, WsProfile] = {
    "uvicorn": WsProfile("2.4", True, True, True, False),
    "hypercorn": WsProfile("2.3", False, False, False, True),
    "strict": WsProfile("2.5", True, True, True, True),
}
assert set(WS_PROFILES) == set(WS_SERVERS)  # one profile per modelled server


@dataclass
class ClientView:
    """The session as the client saw it."""

    #: ``open``, ``rejected`` (403), ``denied`` (the denial response), ``error``
    #: (500), or ``handshake`` (nothing came back).
    handshake: str = "handshake"
    status: int | None = None
    subprotocol: str | None = None
    accept_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    denial_body: bytes = b""
    received: list[str | bytes] = field(default_factory=list)
    sent: list[str | bytes] = field(default_factory=list)
    #: The server's close frame, ``(code, reason)``.
    server_close: tuple[int, str] | None = None
    #: How the client left: ``(code, reason)`` of its close, 1006 for a drop.
    left: tuple[int, str] | None = None


def ws_scope(case: Case) -> dict[str, Any]:
    """The ``websocket`` scope the profile opens for the case's handshake."""
    hs, name = case.websocket.handshake, case.server.name
    headers = [
        (b"host", b"testserver"),
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    if hs.subprotocols:
        headers.append((b"sec-websocket-protocol", ", ".join(hs.subprotocols).encode()))
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hs.headers
    ]
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": WS_PROFILES[name].spec_version},
        "http_version": "1.1",
        "scheme": "ws",
        "path": hs.path,
        "raw_path": hs.path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": list(hs.subprotocols),
        # All three profiles take denial responses (uvicorn >= 0.30, hypercorn).
        "extensions": {"websocket.http.response": {}},
    }


class FakeWsServer:
    """Both ends of one WebSocket connection, against the app."""

    def __init__(self, case: Case, rec: Recorder) -> None:
        self.case = case
        self.rec = rec
        self.profile = WS_PROFILES[case.server.name]
        self.view = ClientView()
        #: ``handshake``, ``denial`` (a denial response under way), ``open``,
        #: ``closed`` (the app closed), ``rejected``, ``denied``.
        self.phase = "handshake"
        self.connected = False
        self.gone = False
        #: The client left an open connection (not during the handshake).
        self.left_open = False
        self.inbox: list[Message] = []
        self.disconnects_sent = 0
        self._changed = anyio.Event()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _until(self, ready: Any, patience: float = float("inf")) -> None:
        with anyio.move_on_after(patience):
            while not ready():
                await self._changed.wait()

    # The app's side.

    async def receive(self) -> Message:
        message = await self._receive()
        self.rec.log(0, "receive", message)
        return message

    async def _receive(self) -> Message:
        if not self.connected:
            self.connected = True
            steps = self.case.websocket.steps
            if steps and steps[0].after < 0:
                # The client hangs up right after its handshake request.
                self._leave(steps[0])
            return {"type": "websocket.connect"}
        await self._until(
            lambda: (
                self.inbox
                or self.gone
                or self.phase not in ("handshake", "denial", "open")
            )
        )
        if self.inbox and self.phase == "open":
            return self.inbox.pop(0)
        if self.disconnects_sent and not self.profile.repeats:
            await anyio.sleep_forever()
        self.disconnects_sent += 1
        return self._disconnect()

    def _disconnect(self) -> Message:
        left, closed = self.view.left, self.phase == "closed"
        if not self.profile.client_code:
            return {"type": "websocket.disconnect", "code": 1000 if closed else 1006}
        if left is not None and self.left_open:
            return {"type": "websocket.disconnect", "code": left[0], "reason": left[1]}
        if closed and self.view.server_close is not None:
            code, reason = self.view.server_close
            if self.case.server.name == "strict":
                return {"type": "websocket.disconnect", "code": code, "reason": reason}
            return {"type": "websocket.disconnect", "code": 1005}
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(self, message: Message) -> None:
        self.rec.log(0, "send", message)
        kind, phase = message.get("type"), self.phase
        if self.gone and phase in ("open", "closed"):
            if self.profile.raises_when_gone:
                raise ClientDisconnected("the client has disconnected")
            return
        if phase == "handshake" and kind == "websocket.accept":
            self._accept(message)
        elif phase == "handshake" and kind == "websocket.close":
            self._end_handshake("rejected", 403)
        elif phase == "handshake" and kind == "websocket.http.response.start":
            self.phase, self.view.status = "denial", int(message.get("status", 0))
        elif phase == "denial" and kind == "websocket.http.response.body":
            self.view.denial_body += message.get("body", b"")
            if not message.get("more_body", False):
                self._end_handshake("denied", self.view.status)
        elif phase == "open" and kind == "websocket.send":
            data = message.get("bytes")
            self.view.received.append(
                data if data is not None else message.get("text", "")
            )
            self._wake()
        elif phase == "open" and kind == "websocket.close":
            self.phase = "closed"
            self.view.server_close = (
                int(message.get("code", 1000)),
                message.get("reason") or "",
            )
            self._wake()
        else:
            self._unexpected(str(kind))

    def _accept(self, message: Message) -> None:
        sub = message.get("subprotocol")
        offered = self.case.websocket.handshake.subprotocols
        if self.profile.checks_subprotocol and sub is not None and sub not in offered:
            raise Exception("Invalid Subprotocol")  # hypercorn's own words
        self.phase = "open"
        self.view.handshake, self.view.status, self.view.subprotocol = "open", 101, sub
        self.view.accept_headers = [tuple(h) for h in message.get("headers", [])]
        self._wake()

    def _end_handshake(self, how: str, status: int | None) -> None:
        self.phase = how
        self.view.handshake, self.view.status = how, status
        self._wake()

    def _unexpected(self, kind: str) -> None:
        error = f"Unexpected ASGI message {kind!r} in websocket state {self.phase!r}."
        if self.case.server.name == "hypercorn":
            raise UnexpectedMessageError(error)
        raise RuntimeError(error)

    def app_ended(self) -> None:
        """The app returned or raised: a handshake it never answered is a 500."""
        if self.phase in ("handshake", "denial"):
            self._end_handshake("error", 500)
        elif self.phase == "open" and not self.gone:
            # The server closes the connection (uvicorn: 1000; hypercorn: 1011).
            self.phase = "closed"
            self.view.server_close = (
                1011 if self.case.server.name == "hypercorn" else 1000,
                "",
            )
            self._wake()

    # The client's side.

    def _leave(self, step: Step) -> None:
        self.gone = True
        self.left_open = self.phase == "open"
        code = 1006 if step.kind == "drop" else step.code
        self.view.left = (code, "" if step.kind == "drop" else step.reason)
        self.rec.disconnected = self.rec.note(f"client leaves ({step.kind} {code})")
        self._wake()

    async def client(self) -> None:
        """The client's script: each step once the handshake is over (or during
        it, for ``after=-1``) and it has seen ``after`` messages, or waited
        `STEP_PATIENCE` for them."""
        for step in self.case.websocket.steps:
            if step.after < 0:
                return  # it left at the connect (see _receive)
            if step.after >= 0:
                await self._until(lambda: self.phase != "handshake")
                await self._until(
                    lambda s=step: (
                        len(self.view.received) >= s.after or self.phase != "open"
                    ),
                    STEP_PATIENCE,
                )
                if self.phase != "open":
                    return
            if step.kind in ("close", "drop"):
                self._leave(step)
                return
            frame: Message = {"type": "websocket.receive"}
            frame["text" if step.kind == "text" else "bytes"] = step.payload
            self.view.sent.append(step.payload)
            self.inbox.append(frame)
            self._wake()
        await self._until(lambda: self.phase != "handshake")
        await self._until(lambda: self.phase != "open", STEP_PATIENCE)
        if self.phase == "open":
            self._leave(Step("close", code=IDLE_CLOSE[0], reason=IDLE_CLOSE[1]))
