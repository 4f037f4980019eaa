"""User middleware for the attribution tests: a pure pass-through and a planted bug."""

from __future__ import annotations

from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response


class PassThrough(BaseHTTPMiddleware):
    """A user's pure pass-through `BaseHTTPMiddleware`: only Starlette's bugs."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        return response


class DropsLastChunk:
    """Pure ASGI, with a planted bug: the last request-body chunk loses its bytes."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def dropping() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                message = {**message, "body": b""}
            return message

        await self.app(scope, dropping, send)
