"""The WebSocket conformance probe: an ASGI app that records what a server does
on a ``websocket`` scope.

Like `asgifuzz._confirm.probe` for HTTP, the same `WsProbeApp` runs on a real
server (``serve.py --probe``: the HTTP probe passes websocket scopes here) and
on the driver's `FakeWsServer` with a profile (`ws_conformance`). Each
handshake's path picks what is probed; the record (plain JSON data) holds:

- ``spec_version``, ``extensions``: the scope's ASGI spec version and extension
  names (None: absent);
- ``/ws/close``: the app accepts, reads the client's one frame, closes with
  4001; then what ``send()`` of a frame does (``send_after_close``) and what two
  ``receive()`` calls give (``after_close``);
- ``/ws/drop``: the app accepts and sends a frame; the client drops the TCP
  connection once it has it (no close frame); what two ``receive()`` calls give
  (``after_drop``: the code the app sees, does the disconnect repeat?) and what
  ``send()`` does then (``send_after_drop``);
- ``/ws/client-close``: the same, the client closing with 4000 ``"bye"``
  (``after_client_close``, ``send_after_client_close``);
- ``/ws/no-accept``, ``/ws/raise-before``, ``/ws/reject``, ``/ws/deny``,
  ``/ws/return-open``, ``/ws/raise-open``, ``/ws/subprotocol``: the app returns
  at once; raises at once; closes before accepting; sends a denial response (where advertised); accepts, sends
  a frame and returns; the same, raising; accepts with a subprotocol the client
  did not offer (``accept``: what that ``send()`` does). What the client saw
  of these is its own record (`asgifuzz._confirm.ws_client`).

A ``receive()`` that does not return within `WAIT` seconds is ``"blocks"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from asgifuzz._types import Message, Receive, Scope, Send
from asgifuzz.models._websocket import DENIAL_BODY, DENIAL_STATUS, Step

#: Seconds after which a ``receive()`` that has not returned counts as blocking.
WAIT = 0.3
#: Seconds the probe waits for the client to go (it goes at once).
GONE_WAIT = 5.0
#: What the client does on each probed path (the driver's steps; see the module).
WS_PATHS: dict[str, tuple[Step, ...]] = {
    "/ws/close": (Step("text", "hi"),),
    "/ws/drop": (Step("drop", after=1),),
    "/ws/client-close": (Step("close", after=1, code=4000, reason="bye"),),
    "/ws/no-accept": (),
    "/ws/raise-before": (),
    "/ws/reject": (),
    "/ws/deny": (),
    "/ws/return-open": (),
    "/ws/raise-open": (),
    "/ws/subprotocol": (),
}
#: The subprotocols the client offers on each path (the others offer none).
OFFERED = {"/ws/subprotocol": ("chat",)}
_DENIAL = "websocket.http.response"

Record = dict[str, Any]


class ProbeError(Exception):
    """What the ``/ws/raise-before`` and ``/ws/raise-open`` probes raise."""


def _shown(message: Message) -> list[Any]:
    """A message as ``[type, code, reason]`` (None where a key is absent)."""
    return [message.get("type"), message.get("code"), message.get("reason")]


async def _receive_within(receive: Receive, seconds: float) -> list[Any] | str:
    with anyio.move_on_after(seconds):
        return _shown(await receive())
    return "blocks"


async def _try_send(send: Send, message: Message) -> str:
    try:
        await send(message)
    except Exception as exc:
        return f"raises {type(exc).__name__}"
    return "returns"


_FRAME: Message = {"type": "websocket.send", "text": "x"}


class WsProbeApp:
    """Records what the server does on a websocket scope (see the module);
    ``sink`` takes each session's record."""

    def __init__(self, sink: Callable[[Record], None]) -> None:
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions")
        path = scope["path"]
        record: Record = {
            "path": path,
            "spec_version": scope.get("asgi", {}).get("spec_version"),
            "extensions": None if extensions is None else sorted(extensions),
            "connect": (await receive()).get("type"),
        }
        try:
            await self._probe(path, record, receive, send)
        finally:
            self.sink(record)

    async def _probe(
        self, path: str, record: Record, receive: Receive, send: Send
    ) -> None:
        if path == "/ws/no-accept":
            return
        if path == "/ws/raise-before":
            raise ProbeError("the probe raises before it accepts")
        if path == "/ws/reject":
            await send({"type": "websocket.close", "code": 1008})
            return
        if path == "/ws/deny" and _DENIAL in (record["extensions"] or ()):
            start = {"type": f"{_DENIAL}.start", "status": DENIAL_STATUS, "headers": []}
            await send(start)
            await send({"type": f"{_DENIAL}.body", "body": DENIAL_BODY})
            return
        if path == "/ws/deny":
            await send({"type": "websocket.close", "code": 1008})
            return
        if path == "/ws/subprotocol":
            accept = {"type": "websocket.accept", "subprotocol": "other"}
            record["accept"] = await _try_send(send, accept)
            return
        await send({"type": "websocket.accept"})
        if path == "/ws/close":
            record["frame"] = _shown(await receive())
            await send({"type": "websocket.close", "code": 4001, "reason": "app"})
            record["send_after_close"] = await _try_send(send, _FRAME)
            record["after_close"] = [
                await _receive_within(receive, WAIT),
                await _receive_within(receive, WAIT),
            ]
            return
        await send(_FRAME)
        if path in ("/ws/return-open", "/ws/raise-open"):
            if path == "/ws/raise-open":
                raise ProbeError("the probe raises once it has accepted")
            return
        key = path.removeprefix("/ws/").replace("-", "_")
        record[f"after_{key}"] = [
            await _receive_within(receive, GONE_WAIT),
            await _receive_within(receive, WAIT),
        ]
        record[f"send_after_{key}"] = await _try_send(send, _FRAME)
