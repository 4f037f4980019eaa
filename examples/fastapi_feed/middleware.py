"""Middleware of the kind found in third-party packages (written for this example).

``TimeoutMiddleware`` has a real streaming bug of the BaseHTTPMiddleware family:
when the time is up it answers 504, even when the response has already started
(a stream): the server gets a second ``http.response.start`` in the middle of the
body. (And its clock runs on after the response, cutting background tasks short.)
``TimeoutMiddlewareFixed`` answers 504 only while nothing has been sent, raises
to abort a started response (the server closes the connection), and stops its
clock once the response is complete.
"""

from __future__ import annotations

import math
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
    """Pure ASGI: gives up on a response not sent within ``timeout`` seconds.

    The clock stops once the response is complete (background tasks are not
    cut short); a 504 only while nothing has been sent; mid-stream, raising
    is the only way left to abort the response (the server closes it).
    """

    def __init__(self, app: Any, timeout: float = 3.0) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        with anyio.CancelScope(deadline=anyio.current_time() + self.timeout) as clock:

            async def tracking_send(message: Any) -> None:
                nonlocal started
                started = started or message["type"] == "http.response.start"
                if message["type"] == "http.response.body" and not message.get(
                    "more_body", False
                ):
                    clock.deadline = math.inf  # the response is complete
                await send(message)

            await self.app(scope, receive, tracking_send)
        if not clock.cancelled_caught:
            return
        if started:
            raise TimeoutError(f"no complete response within {self.timeout}s")
        response = JSONResponse({"detail": "timed out"}, status_code=504)
        await response(scope, receive, send)
