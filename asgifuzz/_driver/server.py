"""The server and the client of one run: the measured server profiles and
`FakeServer`, which plays both ends of the connection against the app.

The server profiles follow the behaviour measured on real servers (see
``DRIVER_FACTS.md`` in the design notes): how the body is split into messages,
what ``receive()`` does once the body is read or the client is gone, and what
``send()`` does after a disconnect or after the response is complete.
"""

from __future__ import annotations

import copy
from typing import Any

import anyio

from asgifuzz._driver.extensions import scope_extensions, takes
from asgifuzz._driver.outcome import ServerResponse
from asgifuzz._targets.declarations import Declaration, with_needs
from asgifuzz._targets.specs import declarations
from asgifuzz._types import Message
from asgifuzz.models import Case, Server
from asgifuzz.models._middleware import pause
from asgifuzz.models._record import Recorder

#: Virtual seconds a client that never hangs up waits for its response.
PATIENCE = 30.0
#: Virtual seconds after which a run that has not returned is a hang.
LIMIT = 60.0
#: Virtual seconds after a disconnect at which daphne cancels the app.
DAPHNE_CANCEL_AFTER = 10.0

#: ``scope["asgi"]["spec_version"]`` per profile (None: the key is absent).
SPEC_VERSIONS = {
    "uvicorn": "2.3",
    "hypercorn": "2.1",
    "daphne": None,
    "granian": "2.3",
    "strict": "2.4",
}
#: Profiles that send ``http.disconnect`` once, then block (the others repeat it).
DISCONNECT_ONCE = ("hypercorn", "daphne")
#: Profiles that drop the unread body when the client goes (the others deliver it).
DROP_BODY_ON_DISCONNECT = ("uvicorn", "strict")


class ClientDisconnected(OSError):
    """What the ``strict`` server (ASGI spec 2.4) raises from ``send()`` once the
    client is gone."""


class UnexpectedMessageError(Exception):
    """What the ``hypercorn`` profile raises on an out-of-order message."""


def body_messages(case: Case) -> list[Message]:
    """The ``http.request`` messages the server delivers for this request body."""
    chunks, name = case.request.body, case.server.name
    if name == "daphne":
        data = b"".join(chunks)
        parts = [data[i : i + 8192] for i in range(0, len(data), 8192)] or [b""]
        if len(data) and len(data) % 8192 == 0:
            parts.append(b"")
        return [
            {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)
        ]
    if name == "strict":
        parts = list(chunks) or [b""]
        return [
            {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)
        ]
    parts = [c for c in chunks if c]
    if name == "uvicorn":
        # uvicorn coalesces and marks the last data message final; never b"" T.
        if not parts:
            return [{"type": "http.request", "body": b"", "more_body": False}]
        return [
            {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)
        ]
    # hypercorn and granian: every data message more_body=True, then b"" False.
    return [
        *({"type": "http.request", "body": p, "more_body": True} for p in parts),
        {"type": "http.request", "body": b"", "more_body": False},
    ]


def make_scope(case: Case) -> dict[str, Any]:
    req, profile = case.request, case.server.name
    asgi: dict[str, str] = {"version": "3.0"}
    spec = SPEC_VERSIONS[profile]
    if spec is not None:
        asgi["spec_version"] = spec
    headers = [(b"host", b"testserver")]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in req.headers
    ]
    if req.body:
        headers.append((b"content-length", str(len(req.body_bytes)).encode()))
    declared: tuple[Declaration, ...] = ()
    if any(la.family == "user" for la in case.stack.layers):
        declared = declarations(case)
        headers = with_needs(headers, declared)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": asgi,
        "http_version": case.server.http_version,
        "method": req.method,
        "scheme": req.scheme,
        "path": req.path,
        "raw_path": req.path.encode(),
        "root_path": "",
        "query_string": req.query.encode("latin-1"),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80 if req.scheme == "http" else 443),
    }
    extensions = scope_extensions(profile, case.server.http_version)
    if extensions is not None:
        scope["extensions"] = extensions
    state = {k: v for d in declared for k, v in d.state.items()}
    if state:
        # A copy per run: what one run's layers store there is not the next's.
        scope["state"] = copy.deepcopy(state)
    return scope


class FakeServer:
    """The server and the client of one run (state machine + scheduled disconnect)."""

    def __init__(self, case: Case, rec: Recorder) -> None:
        self.case = case
        self.profile: Server = case.server
        self.rec = rec
        self.messages = body_messages(case)
        self.next_message = 0
        # How many body messages have arrived: all at once, or one every
        # ``receive_checkpoints`` checkpoints of the client's (see body_arrives).
        self.arrived = len(self.messages) if not case.server.receive_checkpoints else 0
        self.receives = 0
        self.sends = 0
        self.disconnects_sent = 0
        self.gone = False
        self.timed_out = False
        self.response = ServerResponse()
        self.app_scope = anyio.CancelScope()
        self._changed = anyio.Event()
        #: What the server advertised (the extensions it takes messages of).
        self.extensions = scope_extensions(self.profile.name, self.profile.http_version)
        rec.advertised[0] = tuple(self.extensions or ())

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def disconnect(self, reason: str) -> None:
        if not self.gone:
            self.gone = True
            self.rec.disconnected = self.rec.note(f"client disconnects ({reason})")
            self._wake()

    async def receive(self) -> Message:
        message = await self._receive()
        self.rec.log(0, "receive", message)
        return message

    async def _receive(self) -> Message:
        client, name = self.case.client, self.profile.name
        index = self.receives
        self.receives += 1
        if client.disconnect == "receive" and index >= client.at:
            self.disconnect(f"at receive() #{index}")
        while True:
            if self.gone and name in DROP_BODY_ON_DISCONNECT:
                self.next_message = len(self.messages)
            if self.next_message < self.arrived:
                self.next_message += 1
                return dict(self.messages[self.next_message - 1])
            if self.gone or self.next_message >= len(self.messages):
                # A client that is gone sends no more of its body.
                return await self._receive_after_body()
            await self._changed.wait()  # the rest of the body is on its way

    async def _receive_after_body(self) -> Message:
        name = self.profile.name
        while not (self.gone or self.response.complete):
            await self._changed.wait()
        if name in DISCONNECT_ONCE and self.disconnects_sent:
            await anyio.sleep_forever()
        self.disconnects_sent += 1
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        index = self.sends
        self.sends += 1
        await self._send(message)
        # When the send returned (background work may start only after the
        # final body's send has returned: invariant I5).
        self.rec.send_returned.append((self.rec.last_tick, index))

    async def _send(self, message: Message) -> None:
        rec, name, response = self.rec, self.profile.name, self.response
        rec.log(0, "send", message)
        kind = message.get("type")
        if self.gone:
            if name == "strict":
                raise ClientDisconnected("the client has disconnected")
            if name == "granian" and response.complete:
                raise RuntimeError(
                    "ASGI flow error: Transport not initialized or closed"
                )
            return
        if response.complete:
            if name == "daphne":
                return
            error = f"Unexpected ASGI message {kind!r} sent, after response already completed."
            raise (
                UnexpectedMessageError(error)
                if name == "hypercorn"
                else RuntimeError(error)
            )
        if kind == "http.response.start" and not response.started:
            response.started = True
            response.status = message.get("status")
            response.headers = list(message.get("headers", []))
            response.trailers_expected = bool(message.get("trailers", False)) and bool(
                self.extensions and "http.response.trailers" in self.extensions
            )
            if self.case.client.disconnect == "response_start":
                self.disconnect("after http.response.start")
        elif (
            kind == "http.response.body" and response.started and not response.body_done
        ):
            response.body += message.get("body", b"")
            response.body_messages += 1
            if not message.get("more_body", False):
                response.body_done = True
                response.complete = not response.trailers_expected
            self._body_message_taken()
        elif takes(response, self.extensions, message):
            self._body_message_taken()
        else:
            error = (
                f"Unexpected ASGI message {kind!r} sent (started={response.started})."
            )
            raise (
                UnexpectedMessageError(error)
                if name == "hypercorn"
                else RuntimeError(error)
            )
        await pause(self.profile.send_checkpoints)

    def _body_message_taken(self) -> None:
        """After a message of the response's body (``http.response.body``, or an
        extension's: pathsend, zerocopysend, trailers, an early hint): wake the
        run if the response is complete; a client that leaves after body
        message N leaves once N + 1 body messages of any kind have come."""
        response, rec = self.response, self.rec
        if response.complete:
            rec.response_complete = rec.note("the server has the whole response")
            self._wake()
        client = self.case.client
        if client.disconnect == "body_message" and response.body_messages > client.at:
            self.disconnect(f"after response body message #{client.at}")

    async def body_arrives(self) -> None:
        """A slow upload: one body message every ``receive_checkpoints``
        checkpoints, whether or not the app is receiving."""
        while self.arrived < len(self.messages) and not self.gone:
            await pause(self.profile.receive_checkpoints)
            self.arrived += 1
            self._wake()

    async def client_timeline(self) -> None:
        """The client's clock: checkpoint disconnects and the client's patience."""
        client = self.case.client
        if client.disconnect == "checkpoints":
            await pause(client.at)
            self.disconnect(f"after {client.at} checkpoints")
        with anyio.move_on_after(PATIENCE):
            while not (self.gone or self.response.complete):
                await self._changed.wait()
        if not (self.gone or self.response.complete):
            self.timed_out = True
            self.disconnect(f"its patience ({PATIENCE:g}s) ran out")
        if self.profile.name == "daphne":
            while not self.gone:
                await self._changed.wait()
            await anyio.sleep(DAPHNE_CANCEL_AFTER)
            self.rec.note("daphne cancels the app")
            self.app_scope.cancel()
