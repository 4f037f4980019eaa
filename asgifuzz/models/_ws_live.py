"""The live WebSocket models: the endpoint (a Starlette ``WebSocketRoute``
endpoint) and the websocket-aware layers of family ``ws``.

Every layer passes a scope that is not ``websocket`` straight through.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.responses import Response
from starlette.websockets import WebSocket

from asgifuzz._errors import ModelError
from asgifuzz._types import ASGIApp, Message, Receive, Scope, Send
from asgifuzz.models._middleware import pause
from asgifuzz.models._parts import Layer
from asgifuzz.models._record import Recorder
from asgifuzz.models._websocket import (
    AUTH_HEADER,
    DENIAL_BODY,
    DENIAL_STATUS,
    REWRITE_HEADER,
    REWRITE_SUBPROTOCOL,
    WsEndpoint,
)

#: The extension a server advertises when it takes denial responses.
DENIAL_EXTENSION = "websocket.http.response"
#: The close code and reason of the ``ws.auth`` layer (RFC 6455: policy violation).
AUTH_CODE, AUTH_REASON = 1008, "unauthorized"


def build_ws_endpoint(
    model: WsEndpoint, rec: Recorder
) -> Callable[[WebSocket], Coroutine[Any, Any, None]]:
    """The endpoint of ``model``, as ``WebSocketRoute`` calls it."""

    async def endpoint(ws: WebSocket) -> None:
        kind = model.kind
        if kind == "raise_before":
            raise rec.model_raise(ModelError("the websocket endpoint"))
        # A Starlette without WebSocket.send_denial_response (older releases)
        # cannot deny: its endpoint closes instead, as for a server without
        # the extension.
        can_deny = hasattr(ws, "send_denial_response")
        if (
            kind == "deny"
            and can_deny
            and DENIAL_EXTENSION in ws.scope.get("extensions", {})
        ):
            denial = Response(DENIAL_BODY, status_code=DENIAL_STATUS)
            await ws.send_denial_response(denial)
            return
        if kind in ("reject", "deny"):
            await ws.close(model.code, model.reason)
            return
        await ws.accept(subprotocol=model.subprotocol or None)
        if kind == "iterate":
            async for text in ws.iter_text():
                await ws.send_text(text)
            return
        if kind == "broadcast":
            for i in range(model.count):
                await ws.send_text(f"message {i}")
        if kind in ("broadcast", "close"):
            await ws.close(model.code, model.reason)
            return
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if kind == "raise_after":
                raise rec.model_raise(ModelError("the websocket endpoint"))
            if kind == "echo":
                if message.get("bytes") is not None:
                    await ws.send_bytes(message["bytes"])
                else:
                    await ws.send_text(message.get("text") or "")

    return endpoint


class ModelWsMiddleware:
    """A websocket-aware pure-ASGI layer: ``passthrough``; ``rewrite`` (adds a
    handshake header, reverses the offered subprotocols and adds a header to
    the accept); ``auth`` (closes with 1008 before accepting a handshake without
    an ``authorization`` header); ``read_first`` (reads ``websocket.connect``
    itself, then hands it on)."""

    def __init__(
        self, app: ASGIApp, *, model: Layer, recorder: Recorder, name: str, index: int
    ) -> None:
        self.app = app
        self.model = model
        self.rec = recorder
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        before, after = self.model.pauses
        await pause(before)
        behaviour = self.model.behaviour
        if behaviour == "auth" and not any(
            k == AUTH_HEADER.encode() for k, _ in scope["headers"]
        ):
            await receive()  # websocket.connect
            self.rec.note(f"{self.name} refuses the handshake")
            await send(
                {"type": "websocket.close", "code": AUTH_CODE, "reason": AUTH_REASON}
            )
            return
        if behaviour == "rewrite":
            scope, send = self._rewritten(scope, send)
        elif behaviour == "read_first":
            receive = await self._read_first(receive)
        await self.app(scope, receive, send)
        await pause(after)

    def _rewritten(self, scope: Scope, send: Send) -> tuple[Scope, Send]:
        scope = dict(scope)
        scope["headers"] = [*scope["headers"], (REWRITE_HEADER.encode(), b"1")]
        scope["subprotocols"] = list(reversed(scope.get("subprotocols", [])))

        async def rewriting_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (REWRITE_HEADER.encode(), REWRITE_SUBPROTOCOL.encode()),
                ]
            await send(message)

        return scope, rewriting_send

    async def _read_first(self, receive: Receive) -> Receive:
        first: list[Message] = [await receive()]
        self.rec.note(f"{self.name} read {first[0]['type']}")

        async def replaying_receive() -> Message:
            if first:
                return first.pop()
            return await receive()

        return replaying_receive
