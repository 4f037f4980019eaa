"""User middleware with planted bugs that only what crosses the boundaries
shows (I7:task, X3), and the fixed twins: the reproducers' checks of those keys
are tested on them."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import sniffio


class _Layer:
    fixed = False

    def __init__(self, app: Any) -> None:
        self.app = app


class LeavesTask(_Layer):
    """Bug: starts a keep-alive task per connection (on asyncio) and never stops
    it, so it is still pending when the app returned."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or sniffio.current_async_library() != "asyncio":
            await self.app(scope, receive, send)
            return
        task = asyncio.get_running_loop().create_task(anyio.sleep(3600))
        try:
            await self.app(scope, receive, send)
        finally:
            if self.fixed:
                task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([task])


class SendsEarlyHint(_Layer):
    """Bug: sends an early hint for its stylesheet whatever the scope advertises."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        advertised = "http.response.early_hint" in scope.get("extensions", {})
        if scope["type"] == "http" and (advertised or not self.fixed):
            link = b"</style.css>; rel=preload; as=style"
            await send({"type": "http.response.early_hint", "links": [link]})
        await self.app(scope, receive, send)


class PadsPathsend(_Layer):
    """Bug: ends every response with an empty body message, a pathsend's too."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def padding(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.pathsend" and not self.fixed:
                await send({"type": "http.response.body", "body": b""})

        await self.app(scope, receive, padding)


class LeavesTaskFixed(LeavesTask):
    fixed = True


class SendsEarlyHintFixed(SendsEarlyHint):
    fixed = True


class PadsPathsendFixed(PadsPathsend):
    fixed = True
