"""User middleware with planted bugs in its websocket branch, and the fixed twins.

Each passes ``http`` (and ``lifespan``) scopes straight through.
"""

from __future__ import annotations

from typing import Any


class _Layer:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        await self.websocket(scope, receive, send)

    async def websocket(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class DropsThirdFrame(_Layer):
    """Bug: every third client frame is lost (a miscounted rate limiter)."""

    fixed = False

    async def websocket(self, scope: Any, receive: Any, send: Any) -> None:
        frames = 0

        async def counting() -> Any:
            nonlocal frames
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    frames += 1
                    if frames % 3 == 0 and not self.fixed:
                        continue  # the bug: "over the limit", dropped silently
                return message

        await self.app(scope, counting, send)


class SwallowsCloseCode(_Layer):
    """Bug: the app's close code and reason become a plain 1000 (a logging
    layer that rebuilds the message and forgets its keys)."""

    fixed = False

    async def websocket(self, scope: Any, receive: Any, send: Any) -> None:
        async def logging_send(message: Any) -> None:
            if message["type"] == "websocket.close" and not self.fixed:
                message = {"type": "websocket.close"}
            await send(message)

        await self.app(scope, receive, logging_send)


class RaisesOnDisconnect(_Layer):
    """Bug: reads ``message["text"]`` of every message it passes on, so the
    client's ``websocket.disconnect`` raises ``KeyError``."""

    fixed = False

    async def websocket(self, scope: Any, receive: Any, send: Any) -> None:
        seen: list[str] = []

        async def auditing() -> Any:
            message = await receive()
            if message["type"] != "websocket.connect":
                if self.fixed:
                    seen.append(str(message.get("text", message.get("bytes"))))
                else:
                    seen.append(str(message["text"] or message.get("bytes")))
            return message

        await self.app(scope, auditing, send)


class DropsThirdFrameFixed(DropsThirdFrame):
    """The fixed twin: every frame passes."""

    fixed = True


class SwallowsCloseCodeFixed(SwallowsCloseCode):
    """The fixed twin: the close message passes whole."""

    fixed = True


class RaisesOnDisconnectFixed(RaisesOnDisconnect):
    """The fixed twin: reads the keys it may not find with ``get``."""

    fixed = True
