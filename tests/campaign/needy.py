"""Middleware and an app written for one app's configuration, for the tests
of misconfiguration reports: each reads what its app would provide."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


class NeedsDb:
    """Pure ASGI: reads the database its app's startup puts in app.state."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["app"].state.db  # noqa: B018 (the lookup is the point)
        await self.app(scope, receive, send)


class NeedsUser(BaseHTTPMiddleware):
    """Reads the user an authentication middleware outside it would set."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        request.state.user  # noqa: B018 (the lookup is the point)
        response: Response = await call_next(request)
        return response


class OnlyOnPut:
    """Needs the database only for PUT requests: fails on some cases only."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            scope["app"].state.db  # noqa: B018 (the lookup is the point)
        await self.app(scope, receive, send)


async def _home(request: Request) -> Response:
    return PlainTextResponse(request.app.state.settings["greeting"])


#: An app whose only route reads settings a factory would have set.
app = Starlette(routes=[Route("/", _home)])
