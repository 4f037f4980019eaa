"""The server and the client of a WebSocket run: the profiles and `FakeWsServer`.

Every field of a profile but ``strict``'s is measured on the real server by the
conformance probe (`asgifuzz._confirm.ws_conformance`, ``scripts/conformance``):
uvicorn 0.54 (its wsproto implementation, what ``ws="auto"`` runs without the
``websockets`` package), hypercorn 0.18, daphne 4.2.3 and granian 2.8.9.
``strict`` follows the ASGI spec 2.5 to the letter.
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
#: The close code of a connection that ended without a close frame (RFC 6455
#: §7.1.5), and of a close frame without a code (§7.1.5: "no status").
ABNORMAL, NO_STATUS = 1006, 1005
_DENIAL = "websocket.http.response"


class Disconnected(RuntimeError):
    """What the ``daphne`` profile raises from ``send()`` after the app closed
    (autobahn's ``Disconnected``)."""


class LocalProtocolError(Exception):
    """What the ``uvicorn`` profile raises when the app accepts with a
    subprotocol the client did not offer (wsproto's ``LocalProtocolError``)."""


#: The exceptions a profile raises, by the name the real server's has.
ERRORS: dict[str, type[Exception]] = {
    "ClientDisconnected": ClientDisconnected,
    "Disconnected": Disconnected,
    "Exception": Exception,
    "LocalProtocolError": LocalProtocolError,
    "RuntimeError": RuntimeError,
    "UnexpectedMessageError": UnexpectedMessageError,
}


@dataclass(frozen=True)
class WsProfile:
    """How one server runs the WebSocket side of ASGI (each field is a claim of
    `asgifuzz._confirm.ws_conformance`). An ``*_error`` names the exception
    `send()` raises (`ERRORS`); None: it returns, and nothing is sent."""

    #: ``scope["asgi"]["spec_version"]`` (None: the key is absent).
    spec_version: str | None
    #: ``scope["extensions"]`` of a websocket scope (None: the key is absent).
    extensions: tuple[str, ...] | None
    #: The code of the app's ``websocket.disconnect`` when the client drops the
    #: connection without a close frame.
    drop_code: int
    #: The client's close code reaches the app (else `ABNORMAL`: hypercorn).
    client_code: bool
    #: The client's close reason reaches the app (else no ``reason`` key).
    client_reason: bool
    #: The app's close reason reaches the client (else "": daphne).
    close_reason: bool
    #: The code of the app's ``websocket.disconnect`` once it closed and the
    #: client answered (None: the code the client echoed, the app's own).
    closed_code: int | None
    #: A later ``receive()`` after the ``websocket.disconnect``: ``never`` (it
    #: blocks), ``same`` (the same message again), ``lost`` (`NO_STATUS` once,
    #: for the connection's loss, after a close frame; a drop gives only that
    #: one), ``always`` (`NO_STATUS` every time).
    repeat: str
    #: ``send()`` of a frame once the client is gone (the app had not closed).
    gone_error: str | None
    #: ``send()`` of a frame after the app's own close.
    closed_error: str | None
    #: ``websocket.accept`` with a subprotocol the client did not offer.
    subprotocol_error: str | None
    #: The handshake's status when the app returns without answering it (None:
    #: no answer; daphne rejects at its connect timeout), and when it raises.
    unanswered_status: int | None
    raised_status: int
    #: The close code the client sees when the app returns (raises) after
    #: accepting without closing (`ABNORMAL`: the connection just ends).
    return_close: int
    raise_close: int


_ONLY_DENIAL = (_DENIAL,)
WS_PROFILES: dict[str, WsProfile] = {
    "uvicorn": WsProfile(
        "2.4", _ONLY_DENIAL, NO_STATUS, True, True, True, None, "lost",
        "ClientDisconnected", "RuntimeError", "LocalProtocolError", 500, 500,
        ABNORMAL, ABNORMAL,
    ),
    "hypercorn": WsProfile(
        "2.3", _ONLY_DENIAL, ABNORMAL, False, False, True, 1000, "never",
        None, "UnexpectedMessageError", "Exception", 500, 500, 1011, 1011,
    ),
    "daphne": WsProfile(
        None, None, ABNORMAL, True, False, False, None, "never",
        None, "Disconnected", None, None, 500, 1000, 1011,
    ),
    "granian": WsProfile(
        "2.3", ("http.response.pathsend", _DENIAL), NO_STATUS, True, False, True,
        NO_STATUS, "always", None, None, None, 403, 403, NO_STATUS, NO_STATUS,
    ),
    "strict": WsProfile(
        "2.5", _ONLY_DENIAL, ABNORMAL, True, True, True, None, "same",
        "ClientDisconnected", "RuntimeError", "Exception", 500, 500, 1000, 1011,
    ),
}  # fmt: skip
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
    profile = WS_PROFILES[name]
    asgi = {"version": "3.0"}
    if profile.spec_version is not None:
        asgi["spec_version"] = profile.spec_version
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": asgi,
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
    }
    if profile.extensions is not None:
        scope["extensions"] = {name: {} for name in profile.extensions}
    return scope


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
        self.first_disconnect: Message = {}
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
        if not self.disconnects_sent:
            self.disconnects_sent = 1
            self.first_disconnect = self._disconnect()
            return dict(self.first_disconnect)
        repeat = self.profile.repeat
        dropped = self.view.left is not None and self.view.left[0] == ABNORMAL
        if repeat == "never" or (
            repeat == "lost" and (self.disconnects_sent > 1 or dropped)
        ):
            await anyio.sleep_forever()
        self.disconnects_sent += 1
        if repeat == "same":
            return dict(self.first_disconnect)
        return {"type": "websocket.disconnect", "code": NO_STATUS}

    def _disconnect(self) -> Message:
        """The first ``websocket.disconnect``: for the app's close, the client's
        close or drop, or a client gone during the handshake."""
        p, left = self.profile, self.view.left
        if self.phase == "closed" and self.view.server_close is not None:
            code, reason = self.view.server_close
            if p.closed_code is not None:
                return {"type": "websocket.disconnect", "code": p.closed_code}
            return self._with_reason(code, reason)
        if left is None or not self.left_open:
            return {"type": "websocket.disconnect", "code": ABNORMAL}
        if left[0] == ABNORMAL:
            return {"type": "websocket.disconnect", "code": p.drop_code}
        if not p.client_code:
            return {"type": "websocket.disconnect", "code": ABNORMAL}
        return self._with_reason(*left)

    def _with_reason(self, code: int, reason: str) -> Message:
        message: Message = {"type": "websocket.disconnect", "code": code}
        if self.profile.client_reason:
            message["reason"] = reason
        return message

    async def send(self, message: Message) -> None:
        self.rec.log(0, "send", message)
        kind, phase = message.get("type"), self.phase
        if phase == "closed":
            self._raise(self.profile.closed_error, f"{kind!r} after the app closed")
            return
        if self.gone and phase == "open":
            self._raise(self.profile.gone_error, "the client has disconnected")
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
            reason = message.get("reason") or ""
            self.view.server_close = (
                int(message.get("code", 1000)),
                reason if self.profile.close_reason else "",
            )
            self._wake()
        else:
            self._unexpected(str(kind))

    def _accept(self, message: Message) -> None:
        sub = message.get("subprotocol")
        offered = self.case.websocket.handshake.subprotocols
        if sub is not None and sub not in offered:
            self._raise(self.profile.subprotocol_error, f"Invalid Subprotocol {sub!r}")
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

    @staticmethod
    def _raise(error: str | None, why: str) -> None:
        if error is not None:
            raise ERRORS[error](why)

    def app_ended(self, *, raised: bool = False) -> None:
        """The app returned or raised: a handshake it never answered is a 500
        (or the profile's status; daphne's: none), an open connection closes
        with the profile's code."""
        p = self.profile
        if self.phase in ("handshake", "denial"):
            status = p.raised_status if raised else p.unanswered_status
            if status is not None:
                self._end_handshake("error", status)
        elif self.phase == "open" and not self.gone:
            self.phase = "closed"
            self.view.server_close = (p.raise_close if raised else p.return_close, "")
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
