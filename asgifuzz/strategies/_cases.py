"""The `cases` strategy: whole cases built from the part strategies, or over the
user's own middleware and app (`asgifuzz.strategies._user`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from asgifuzz._targets.specs import middleware_target
from asgifuzz.models import Case, Client, Endpoint, Request, Server, Stack
from asgifuzz.strategies import _swarm, _user
from asgifuzz.strategies._independent import fresh_draws
from asgifuzz.strategies._parts import (
    disconnect_schedules,
    endpoints,
    middleware_stacks,
    requests,
    server_profiles,
)
from asgifuzz.strategies._scopes import (
    AUTO,
    Scopes,
    scope_cases,
    scope_weights,
    supported_scopes,
)


def cases(
    *,
    stack: st.SearchStrategy[Stack] | None = None,
    endpoint: st.SearchStrategy[Endpoint] | None = None,
    request: st.SearchStrategy[Request] | None = None,
    client: st.SearchStrategy[Client] | None = None,
    server: st.SearchStrategy[Server] | None = None,
    middleware: Any = None,
    app: Any = None,
    routes: Sequence[str] = (),
    builtin: bool | Sequence[str] = True,
    lifespan: bool = True,
    headers: Sequence[str | tuple[str, str]] = (),
    cookies: Sequence[str] = (),
    swarm: bool | None = None,
    scopes: Scopes = ("http",),
) -> st.SearchStrategy[Case]:
    """Whole cases; each part (a strategy) defaults to its default strategy:
    `middleware_stacks`, `endpoints`, `requests`, `disconnect_schedules`,
    `server_profiles`. ``seed`` (trio's scheduler seed) shrinks toward 0.

    Fuzzing your own code:

    - ``middleware``: your middleware (classes, ``(cls, {kwargs})`` pairs,
      ``starlette.middleware.Middleware`` objects or import specs such as
      ``"mypkg.auth:Auth(secret='x')"``; a dict names them). Every stack then
      holds one to three of them, mixed with built-in model layers (``builtin``:
      True, False or a list of kinds) in random positions.
    - ``app``: your ASGI app (or its import spec), which replaces the model
      endpoint: requests are drawn over its routes (found in a Starlette or
      FastAPI router, plus ``routes`` such as ``"POST /upload"``), and each run
      goes through its lifespan unless ``lifespan=False``. With ``middleware``
      as well, your middleware wraps your app (no built-in layers unless
      ``builtin`` lists some).

    Naming an object allows it: the cases name it (``user.<name>`` layers,
    ``Case.app``) and only this process can run them.

    Every drawn request (whichever strategy draws it) gets ``headers``
    (``"name: value"`` or pairs; they replace drawn headers of those names) and
    ``cookies`` (``"name=value"``, sent with any drawn cookies).

    ``swarm`` (default: on, unless ``ASGIFUZZ_SWARM=0``): each case first draws
    which layer behaviours, endpoint kinds, content types, disconnect kinds and
    servers may appear in it, then draws within them
    (`asgifuzz.strategies._swarm`); parts given as strategies (the user's
    layers and app among them) are drawn as they are. Shrinks toward fewer
    features and, within them, toward the same simplest case.

    ``scopes`` chooses the scope types drawn (``"http"``, ``"websocket"``,
    ``"lifespan"``; see `asgifuzz.strategies._scopes`), or maps them to weights
    (``{"http": 8, "websocket": 2}``); with several, each case is one of them,
    drawn in proportion to the weights (names alone: `SCOPE_WEIGHTS`, 8:1:1).
    Default: ``http``. ``scopes="auto"``: all the target supports
    (`supported_scopes`: all three for the built-in models and for the user's
    layers unless they declare fewer; ``http``, and ``websocket`` if it has a
    ``WebSocketRoute``, for an app).
    Shrinks toward an ``http`` case.
    """
    weights = scope_weights(_supported(middleware, app) if scopes == AUTO else scopes)
    drawn = {
        s: scope_cases(s, middleware=middleware, builtin=builtin, app=app)
        for s in weights
        if s != "http"
    }
    if headers or cookies:  # a handshake, a lifespan case's request get them too
        add = _user.case_extras(headers, cookies)
        drawn = {s: d.map(add) for s, d in drawn.items()}
    if "http" not in weights:
        return _weighted(weights, drawn)
    http = _http_cases(
        stack=stack,
        endpoint=endpoint,
        request=request,
        client=client,
        server=server,
        middleware=middleware,
        app=app,
        routes=routes,
        builtin=builtin,
        lifespan=lifespan,
        headers=headers,
        cookies=cookies,
        swarm=swarm,
    )
    return _weighted(weights, {"http": http, **drawn})


def _supported(middleware: Any, app: Any) -> tuple[str, ...]:
    kinds = _user.allow_middleware(middleware) if middleware is not None else []
    targets = [middleware_target(k.removeprefix("user.")) for k in kinds]
    return supported_scopes(targets, _user.allow_app(app) if app is not None else None)


def _weighted(
    weights: dict[str, int], drawn: dict[str, st.SearchStrategy[Case]]
) -> st.SearchStrategy[Case]:
    """One of ``drawn``, each as often as its weight; shrinks toward the first
    (http, where it is drawn). (``one_of`` would draw its branches alike, and
    it drops repeated ones.)"""
    unit = math.gcd(*weights.values())
    names = [s for s, w in weights.items() for _ in range(w // unit)]
    if len(set(names)) == 1:
        return drawn[names[0]]
    return st.sampled_from(names).flatmap(drawn.__getitem__)


def _http_cases(
    *,
    stack: st.SearchStrategy[Stack] | None,
    endpoint: st.SearchStrategy[Endpoint] | None,
    request: st.SearchStrategy[Request] | None,
    client: st.SearchStrategy[Client] | None,
    server: st.SearchStrategy[Server] | None,
    middleware: Any,
    app: Any,
    routes: Sequence[str],
    builtin: bool | Sequence[str],
    lifespan: bool,
    headers: Sequence[str | tuple[str, str]],
    cookies: Sequence[str],
    swarm: bool | None,
) -> st.SearchStrategy[Case]:
    name = ""
    if app is not None:
        target = _user.allow_app(app, routes=routes, lifespan=lifespan)
        name = target.name
        if stack is None:
            stack = (
                st.just(Stack())
                if middleware is None
                else _user.user_stacks(
                    middleware, builtin=builtin if builtin is not True else False
                )
            )
        endpoint = endpoint if endpoint is not None else st.just(Endpoint())
        if request is None:
            request = _user.app_requests(target.routes)
    elif middleware is not None and stack is None:
        stack = _user.user_stacks(middleware, builtin=builtin)
    if swarm if swarm is not None else _swarm.swarm_default():
        finish = _user.extras_of(headers, cookies) if headers or cookies else None
        return _swarm.swarm_cases(
            stack,
            endpoint,
            request,
            client,
            server,
            name,
            finish,
            sparse=fresh_draws(),
        )
    drawn = request if request is not None else requests()
    if headers or cookies:
        drawn = _user.with_extras(drawn, headers, cookies)
    return st.builds(
        Case,
        stack=stack if stack is not None else middleware_stacks(),
        endpoint=endpoint if endpoint is not None else endpoints(),
        request=drawn,
        client=client if client is not None else disconnect_schedules(),
        server=server if server is not None else server_profiles(),
        seed=st.integers(0, 2**32 - 1),
        app=st.just(name),
    )
