"""A user's code, for the tests of user targets: middleware (good and buggy) and apps."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

#: What the lifespan of `lifespan_app` did, in order.
EVENTS: list[str] = []


class Stamp:
    """Pure ASGI, well behaved: adds a header."""

    def __init__(self, app: Any, value: str = "1") -> None:
        self.app, self.value = app, value

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    *message.get("headers", []),
                    (b"x-stamp", self.value.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


class Greedy(BaseHTTPMiddleware):
    """Consumes the request body with request.stream(): the app gets b''."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        async for _ in request.stream():
            pass
        response: Response = await call_next(request)
        return response


class Answer500:
    """Pure ASGI: answers any exception with a 500 of its own (handles it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracking(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            if started:
                raise
            await PlainTextResponse("oops", status_code=500)(scope, receive, send)


class Crash(BaseHTTPMiddleware):
    """Raises an exception of its own on every request."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        raise KeyError("crash")


class Configurable:
    """Takes arguments: ``Configurable(app, secret, *, level=1)``."""

    def __init__(self, app: Any, secret: str, *, level: int = 1) -> None:
        self.app, self.secret, self.level = app, secret, level

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    EVENTS.append("startup")
    yield {"greeting": "hello"}
    EVENTS.append("shutdown")


async def _state(request: Request) -> PlainTextResponse:
    return PlainTextResponse(getattr(request.state, "greeting", "no state"))


async def _echo(request: Request) -> Response:
    return Response(await request.body())


async def _item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request.path_params["item_id"]))


async def _none(request: Request) -> Any:
    return None  # not a Response: Starlette itself raises


async def _user_error(request: Request) -> Response:
    raise ValueError("the app's own error")


lifespan_app = Starlette(
    routes=[
        Route("/state", _state),
        Route("/echo", _echo, methods=["POST"]),
        Route("/items/{item_id:int}", _item),
        Mount("/api", routes=[Route("/ping", _state)]),
        Route("/none", _none),
        Route("/error", _user_error),
    ],
    lifespan=_lifespan,
)


async def raw_app(scope: Any, receive: Any, send: Any) -> None:
    """Any ASGI callable: no router to discover."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"raw"})


@contextlib.asynccontextmanager
async def _bad_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("no database")
    yield  # pragma: no cover


failing_startup_app = Starlette(routes=[Route("/", _state)], lifespan=_bad_lifespan)


class Deadline:
    """Pure ASGI: cancels the app after half a second and answers 504 (if it can)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import anyio

        with anyio.move_on_after(0.5) as timer:
            await self.app(scope, receive, send)
        if timer.cancel_called:  # (anyio 3 has no cancelled_caught)
            await PlainTextResponse("late", status_code=504)(scope, receive, send)


def make_app(greeting: str = "hello") -> Starlette:
    """An app factory: ``--app 'user_code:make_app()'`` calls it."""

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(greeting)

    return Starlette(routes=[Route("/", hello)])


class NotASGI:
    """A 'middleware' whose instances cannot be called as ASGI apps."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self) -> None:  # pragma: no cover - never called: refused first
        """Takes no (scope, receive, send)."""


# App mode for real apps: typed path parameters, lifespan state, factories.

#: The paths `typed_app`'s endpoints answered, with the types they were given.
SEEN: list[tuple[str, type]] = []


def _typed(name: str, kind: type) -> Any:
    async def endpoint(request: Request) -> PlainTextResponse:
        value = request.path_params[name]
        assert isinstance(value, kind), (name, value)
        SEEN.append((request.url.path, kind))
        return PlainTextResponse(str(value))

    return endpoint


async def _health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _uuid_type() -> type:
    import uuid

    return uuid.UUID


typed_app = Starlette(
    routes=[
        Route("/items/{item_id:int}", _typed("item_id", int)),
        Route("/files/{path:path}", _typed("path", str)),
        Route("/u/{uid:uuid}", _typed("uid", _uuid_type())),
        Route("/price/{x:float}", _typed("x", float)),
        Route("/users/{name}", _typed("name", str)),
        Route("/health", _health),
    ]
)


class _Pool:
    """What an app makes at startup: a 'connection pool' the requests use."""

    def __init__(self) -> None:
        self.open, self.used = True, 0


@contextlib.asynccontextmanager
async def _pool_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    pool = _Pool()
    app.state.settings = {"name": "shop"}  # the older app.state pattern
    yield {"pool": pool}
    pool.open = False


async def _use_pool(request: Request) -> PlainTextResponse:
    pool = request.state.pool
    assert pool.open, "the pool was closed before the request"
    pool.used += 1
    request.state.mine = "this request's"  # not seen by the next request
    name = request.app.state.settings["name"]
    return PlainTextResponse(f"{name}:{pool.used}")


state_app = Starlette(routes=[Route("/pool", _use_pool)], lifespan=_pool_lifespan)


class HttpOnly:
    """Pure ASGI; drops every scope but http: the app's startup never runs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.app(scope, receive, send)


def traced(app: Any) -> Any:
    """A middleware factory: the documented way to give a middleware objects
    (``--middleware user_code:traced``)."""
    return Configurable(app, secret=object(), level=2)  # type: ignore[arg-type]
