"""Strategies for WebSocket cases: sessions (handshake, endpoint, client steps),
stacks of websocket-aware layers, and whole cases.

Structure first: how many steps, then each step, and every registry simplest
first, so failing sessions shrink toward fewer, shorter frames, an ``echo``
endpoint, no subprotocol and a client that closes normally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from asgifuzz._targets.routes import websocket_paths
from asgifuzz.models import Case, Server, Stack
from asgifuzz.models._parts import STACK_MODES
from asgifuzz.models._websocket import (
    AUTH_HEADER,
    WS_ENDPOINT_KINDS,
    WS_LAYER_KINDS,
    WS_SERVERS,
    Handshake,
    Session,
    Step,
    WsEndpoint,
)
from asgifuzz.strategies import _user
from asgifuzz.strategies._parts import check_bounds, check_kinds, layers

#: The layer kinds of websocket stacks: the websocket-aware ones, then the
#: HTTP models' pass-throughs and Starlette's middlewares (each passes a
#: websocket scope on, or handles it: sessions, trusted host, HTTPS redirect).
WS_STACK_KINDS = (
    *WS_LAYER_KINDS,
    "asgi.passthrough",
    "bhm.passthrough",
    "bhm.add_header",
    "starlette.cors",
    "starlette.gzip",
    "starlette.sessions",
    "starlette.trusted_host",
    "starlette.https_redirect",
)
#: Frame sizes past the few drawn bytes (a frame of 64 KiB crosses uvicorn's
#: and websockets' usual buffer limits).
FRAME_SIZES = (125, 126, 65_536)
CLOSE_CODES = (1000, 1001, 4000, 1011, 3000, 4999)
_SUBPROTOCOLS = ("chat", "json", "v2")
_HEADERS = ((AUTH_HEADER, "Bearer token"), ("origin", "http://example.com"))
_TEXT = st.text(st.characters(codec="utf-8"), max_size=8)


@st.composite
def _payload(draw: st.DrawFn, kind: str) -> str | bytes:
    size = draw(st.sampled_from((None, *FRAME_SIZES)))
    if kind == "text":
        return draw(_TEXT) if size is None else "x" * size
    return draw(st.binary(max_size=8)) if size is None else b"\x00" * size


@st.composite
def _step(draw: st.DrawFn, kind: str, alone: bool) -> Step:
    # Only a close or a drop that is the whole script may come during the handshake.
    after = draw(st.integers(-1 if alone else 0, 3))
    code = draw(st.sampled_from(CLOSE_CODES))
    reason = draw(st.sampled_from(("", "bye")))
    payload = draw(_payload(kind)) if kind in ("text", "bytes") else ""
    return Step(kind=kind, payload=payload, after=after, code=code, reason=reason)


@st.composite
def websocket_sessions(
    draw: st.DrawFn,
    *,
    max_steps: int = 6,
    kinds: Sequence[str] | None = None,
    paths: Sequence[str] = ("/ws", "/ws/chat"),
) -> Session:
    """WebSocket sessions: a handshake (path, up to two offered subprotocols,
    maybe an ``authorization``/``origin`` header), an endpoint of one of
    ``kinds`` (`WS_ENDPOINT_KINDS`), and up to ``max_steps`` client frames
    (text or bytes, a few drawn characters or 125 B, 126 B, 64 KiB; text
    only for an ``iterate`` endpoint, which reads with ``iter_text``), then
    maybe a close (with a code, at any point, even during the handshake) or
    an abrupt drop. Without one, the client closes with 1000 once idle.
    ``paths`` are the handshake's paths to draw from."""
    check_bounds("steps", 0, max_steps)
    chosen = check_kinds("kinds", kinds, WS_ENDPOINT_KINDS)
    # The endpoint first: an ``iterate`` endpoint reads text frames only
    # (``iter_text``), so its client sends no bytes frame.
    kind = draw(st.sampled_from(chosen))
    frames = ("text",) if kind == "iterate" else ("text", "bytes")
    offered = draw(st.lists(st.sampled_from(_SUBPROTOCOLS), max_size=2, unique=True))
    headers = draw(st.lists(st.sampled_from(_HEADERS), max_size=2, unique=True))
    path = draw(st.sampled_from(tuple(paths)))
    n = draw(st.integers(0, max_steps))
    steps = [draw(_step(draw(st.sampled_from(frames)), False)) for _ in range(n)]
    end = draw(st.sampled_from(("idle", "close", "drop")))
    if end != "idle":
        steps.append(draw(_step(end, not steps)))
    endpoint = WsEndpoint(
        kind=kind,
        subprotocol=draw(st.sampled_from(("", *offered))),
        count=draw(st.integers(0, 3)),
        code=draw(st.sampled_from(CLOSE_CODES)),
        reason=draw(st.sampled_from(("", "bye"))),
    )
    return Session(
        handshake=Handshake(
            path=path, subprotocols=tuple(offered), headers=tuple(headers)
        ),
        endpoint=endpoint,
        steps=tuple(steps),
    )


def websocket_stacks(
    *, min_layers: int = 0, max_layers: int = 3, kinds: Sequence[str] | None = None
) -> st.SearchStrategy[Stack]:
    """Stacks of ``min_layers`` to ``max_layers`` layers of ``kinds``
    (`WS_STACK_KINDS`: the websocket-aware layers first)."""
    check_bounds("layers", min_layers, max_layers)
    chosen = check_kinds("kinds", kinds, WS_STACK_KINDS)
    return st.builds(
        lambda drawn, mode: Stack(layers=tuple(drawn), mode=mode),
        st.lists(layers(chosen), min_size=min_layers, max_size=max_layers),
        st.sampled_from(STACK_MODES),
    )


def websocket_cases(
    *,
    stack: st.SearchStrategy[Stack] | None = None,
    session: st.SearchStrategy[Session] | None = None,
    server: st.SearchStrategy[Server] | None = None,
    middleware: Any = None,
    builtin: bool | Sequence[str] = True,
    app: Any = None,
) -> st.SearchStrategy[Case]:
    """Whole WebSocket cases (``scope="websocket"``) on the modelled servers
    (`WS_SERVERS`); with ``middleware`` (as for `cases`) every stack holds one
    to three of the user's layers mixed with built-in ``builtin`` kinds. With
    ``app`` (as for `cases`), the sessions open its ``WebSocketRoute`` s' paths,
    wrapped in the user's ``middleware`` if any (no built-in layers)."""
    name = ""
    if app is not None:
        target = _user.allow_app(app)
        name = target.name
        paths = websocket_paths(target.app)
        if not paths:
            raise InvalidArgument(
                f"the app {target.name!r} has no WebSocketRoute to open; fuzz it "
                "with scopes=['http'] (--scope http)"
            )
        session = session if session is not None else websocket_sessions(paths=paths)
        if stack is None:
            stack = (
                st.just(Stack())
                if middleware is None
                else _user.user_stacks(middleware, builtin=False)
            )
    if stack is None and middleware is not None:
        chosen = WS_STACK_KINDS if builtin is True else builtin
        stack = _user.user_stacks(middleware, builtin=chosen or False)
    return st.builds(
        Case,
        scope=st.just("websocket"),
        stack=stack if stack is not None else websocket_stacks(),
        websocket=session if session is not None else websocket_sessions(),
        server=server
        if server is not None
        else st.builds(Server, name=st.sampled_from(WS_SERVERS)),
        seed=st.integers(0, 2**32 - 1),
        app=st.just(name),
    )
