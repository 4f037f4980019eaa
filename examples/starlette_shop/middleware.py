"""Middleware of the kind found in third-party packages (written for this example).

``CancelOnDisconnectMiddleware`` has a real bug of the BaseHTTPMiddleware family:
to cancel the request when the client goes away, it watches ``receive()`` in a
task of its own, and so steals request-body messages from the app whenever the
body arrives in several pieces over time. The endpoint waits for a body that
will never come. (Running the app inside a task group, it also hands the app's
exceptions on wrapped in an ExceptionGroup.) ``CancelOnDisconnectMiddlewareFixed``
watches only once the app has the whole body, hands the disconnect on to the
app, and re-raises the app's exception as itself.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

_ids = itertools.count(1)


class RequestIdMiddleware(BaseHTTPMiddleware):
    """Adds an ``x-request-id`` header to every response."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["x-request-id"] = str(next(_ids))
        return response


class TimingMiddleware:
    """Pure ASGI: adds a ``server-timing`` header (time taken to start answering)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = anyio.current_time()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (anyio.current_time() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={took:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


class CancelOnDisconnectMiddleware:
    """Pure ASGI: cancels the app as soon as the client disconnects.  (BUGGY)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while True:
                    message = await receive()  # BUG: races the app for the body
                    if message["type"] == "http.disconnect":
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch)
            await self.app(scope, receive, send)
            tg.cancel_scope.cancel()


class CancelOnDisconnectMiddlewareFixed:
    """Pure ASGI: cancels the app ``grace`` seconds after the client disconnects.

    One reader at a time: the app reads the body itself; only then does the
    watcher listen, and it passes the disconnect on to the app. An app it
    cancels before it answered gets a 499 in its place, so that middleware
    above sees a response (Starlette's BaseHTTPMiddleware raises "No response
    returned." otherwise, upstream #1634). The app's exceptions come out as
    themselves, not wrapped in the task group's ExceptionGroup.
    """

    def __init__(self, app: Any, grace: float = 10.0) -> None:
        self.app = app
        self.grace = grace

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done, disconnected = anyio.Event(), anyio.Event()
        started = False

        async def app_receive() -> Any:
            if body_done.is_set():
                if not disconnected.is_set():  # no checkpoint once it is known:
                    await disconnected.wait()  # is_disconnected() polls with none
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                body_done.set()
            elif not message.get("more_body", False):
                body_done.set()
            return message

        async def app_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        error: Exception | None = None
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await body_done.wait()
                while not disconnected.is_set():
                    if (await receive())["type"] == "http.disconnect":
                        disconnected.set()
                await anyio.sleep(self.grace)
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self.app(scope, app_receive, app_send)
            except Exception as exc:
                error = exc  # raised below, not wrapped in the task group's group
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        if tg.cancel_scope.cancelled_caught and not started:
            # 499 Client Closed Request: the client is gone and will not see it.
            await send({"type": "http.response.start", "status": 499, "headers": []})
            await send({"type": "http.response.body", "body": b""})
