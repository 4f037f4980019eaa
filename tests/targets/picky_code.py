"""Middleware that crash only on one feature of a request, for the tests that
the request vocabulary switches real middleware on (found from the CLI).

Each is pure ASGI and otherwise a faithful pass-through, so its crash is the
only thing to find.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from hypothesis import strategies as st

from asgifuzz.models import Request


def _header(scope: Any, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", []) if k.lower() == name), None)


class CookieCrash:
    """Crashes on any request that carries a cookie."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _header(scope, b"cookie") is not None:
            raise RuntimeError("CookieCrash: a request with a cookie")
        await self.app(scope, receive, send)


class BrotliCrash:
    """Crashes when the client accepts ``br`` (a brotli encoder that is missing)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        accepted = (_header(scope, b"accept-encoding") or b"").decode("latin-1")
        codings = {c.split(";")[0].strip() for c in accepted.split(",")}
        if scope["type"] == "http" and "br" in codings:
            raise NotImplementedError("BrotliCrash: no brotli encoder")
        await self.app(scope, receive, send)


class FormCrash:
    """Parses form bodies as UTF-8 (strictly): crashes on non-UTF-8 form data.

    It reads the whole body first, then hands the same messages to the app.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        form = b"application/x-www-form-urlencoded"
        if scope["type"] != "http" or _header(scope, b"content-type") != form:
            await self.app(scope, receive, send)
            return
        read: list[Any] = []
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in read if m["type"] == "http.request")
        parse_qs(body.decode("utf-8"))  # UnicodeDecodeError on non-UTF-8 bytes

        async def replay() -> Any:
            return read.pop(0) if read else await receive()

        await self.app(scope, replay, send)


class KeyRequired:
    """Refuses, by crashing, any request without an ``x-api-key`` header."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _header(scope, b"x-api-key") != b"k":
            raise PermissionError("KeyRequired: no x-api-key")
        await self.app(scope, receive, send)


def api_requests() -> st.SearchStrategy[Request]:
    """A user's own request strategy: uploads to /api with a key."""
    return st.builds(
        Request,
        method=st.just("PUT"),
        path=st.just("/api"),
        headers=st.just((("x-api-key", "k"),)),
        body=st.lists(st.binary(min_size=1, max_size=4), max_size=2).map(tuple),
    )


#: Not a request strategy: draws strings.
not_requests = st.text()
