"""Middleware of the kind found in third-party packages (written for this example).

``TimeoutMiddleware`` has a real streaming bug of the BaseHTTPMiddleware family:
when the time is up it answers 504, even when the response has already started
(a stream): the server gets a second ``http.response.start`` in the middle of the
body. ``TimeoutMiddlewareFixed`` answers 504 only while nothing has been sent,
and otherwise lets the error end the request (the server closes the connection).
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.responses import JSONResponse


class TimeoutMiddleware:
    """Pure ASGI: gives up on a request after ``timeout`` seconds.  (BUGGY)"""

    def __init__(self, app: Any, timeout: float = 3.0) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            with anyio.fail_after(self.timeout):
                await self.app(scope, receive, send)
        except TimeoutError:
            response = JSONResponse({"detail": "timed out"}, status_code=504)
            await response(scope, receive, send)  # BUG: the response may have started


class TimeoutMiddlewareFixed:
    """Pure ASGI: gives up on a request after ``timeout`` seconds."""

    def __init__(self, app: Any, timeout: float = 3.0) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            with anyio.fail_after(self.timeout):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise  # too late for a 504: the error ends the request
            response = JSONResponse({"detail": "timed out"}, status_code=504)
            await response(scope, receive, send)
