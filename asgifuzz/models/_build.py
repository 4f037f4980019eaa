"""Turn a `Case` into a live Starlette app, with a `Tap` on every boundary."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from asgifuzz._targets.specs import app_target, middleware_target
from asgifuzz._types import METHODS, ASGIApp
from asgifuzz.models._case import Case
from asgifuzz.models._endpoint import build_endpoint
from asgifuzz.models._lifespan_app import LifespanLayer, LifespanTap, lifespan_app
from asgifuzz.models._middleware import (
    ModelASGIMiddleware,
    ModelHTTPMiddleware,
    starlette_middleware,
)
from asgifuzz.models._parts import Layer
from asgifuzz.models._record import LifespanRecord, Recorder, Tap
from asgifuzz.models._ws_live import ModelWsMiddleware, build_ws_endpoint


def layer_name(index: int, layer: Layer) -> str:
    return f"layer {index} ({layer.kind})"


def _bind_user(app: ASGIApp, kind: str) -> ASGIApp:
    # Starlette calls middleware factories as cls(app=app, **options).
    return middleware_target(kind[len("user.") :]).wrap(app)


def _layer_factory(
    index: int, layer: Layer, rec: Recorder
) -> tuple[Any, dict[str, Any]]:
    if layer.family == "user":
        return _bind_user, {"kind": layer.kind}
    if layer.family == "starlette":
        return starlette_middleware(layer)
    if layer.family == "ws":
        return ModelWsMiddleware, _model_options(index, layer, rec)
    if layer.family == "lifespan":
        return LifespanLayer, {
            "behaviour": layer.behaviour,
            "recorder": rec,
            "name": layer_name(index, layer),
        }
    cls = ModelHTTPMiddleware if layer.family == "bhm" else ModelASGIMiddleware
    return cls, _model_options(index, layer, rec)


def _model_options(index: int, layer: Layer, rec: Recorder) -> dict[str, Any]:
    return {
        "model": layer,
        "recorder": rec,
        "name": layer_name(index, layer),
        "index": index,
    }


def _route(case: Case, rec: Recorder) -> Route | WebSocketRoute:
    """The one route: the HTTP endpoint at ``/``, or the websocket one at the
    handshake's path."""
    if case.scope == "websocket":
        return WebSocketRoute(
            case.websocket.handshake.path,
            build_ws_endpoint(case.websocket.endpoint, rec),
        )
    return Route("/", build_endpoint(case.endpoint, rec), methods=list(METHODS))


def build(case: Case, rec: Recorder) -> ASGIApp:
    """Build the live ASGI app of ``case``; ``rec`` receives everything it does.

    The boundaries are numbered from the server inward (boundary 0 is the
    server's, which the driver records) and named by what lies inside them;
    ``rec.boundaries`` gets the names.
    """
    layers = case.stack.layers
    if case.app:
        return _build_around_app(case, rec)
    if case.lifespan is not None:
        return _build_session(case, rec)
    route = _route(case, rec)
    if case.stack.mode == "starlette":
        rec.boundaries[:] = [
            "ServerErrorMiddleware",
            *(layer_name(i, la) for i, la in enumerate(layers)),
            "ExceptionMiddleware",
            "endpoint",
        ]
        middleware = []
        for i, layer in enumerate(layers):
            cls, options = _layer_factory(i, layer, rec)
            middleware.append(Middleware(Tap, recorder=rec, where=i + 1))
            middleware.append(Middleware(cls, **options))
        middleware.append(Middleware(Tap, recorder=rec, where=len(layers) + 1))
        routes: list[BaseRoute] = [route]
        app: ASGIApp = Starlette(routes=routes, middleware=middleware)
    else:
        rec.boundaries[:] = [
            *(layer_name(i, la) for i, la in enumerate(layers)),
            "Starlette",
            "endpoint",
        ]
        app = Starlette(routes=[route])
        for i in reversed(range(len(layers))):
            app = Tap(app, recorder=rec, where=i + 1)
            cls, options = _layer_factory(i, layers[i], rec)
            app = cls(app, **options)
    route.app = Tap(route.app, recorder=rec, where=len(rec.boundaries) - 1)
    return app


def _build_around_app(case: Case, rec: Recorder) -> ASGIApp:
    """A user's app, wrapped by the stack's layers by hand (either mode)."""
    layers = case.stack.layers
    rec.boundaries[:] = [*(layer_name(i, la) for i, la in enumerate(layers)), "app"]
    app = app_target(case.app).app
    for i in reversed(range(len(layers))):
        app = Tap(app, recorder=rec, where=i + 1)
        factory, options = _layer_factory(i, layers[i], rec)
        app = factory(app=app, **options)
    return app


def _build_session(case: Case, rec: Recorder) -> ASGIApp:
    """A lifespan session's app: the stack's layers wrap the model app by hand
    (either mode), with a `Tap` and a `LifespanTap` on every boundary."""
    assert case.lifespan is not None  # build() sends only sessions here
    layers = case.stack.layers
    rec.lifespan = LifespanRecord()
    rec.boundaries[:] = [*(layer_name(i, la) for i, la in enumerate(layers)), "app"]
    app = lifespan_app(case.lifespan, rec)
    for i in reversed(range(len(layers))):
        app = LifespanTap(
            Tap(app, recorder=rec, where=i + 1), recorder=rec, where=i + 1
        )
        factory, options = _layer_factory(i, layers[i], rec)
        app = factory(app=app, **options)
    return app
