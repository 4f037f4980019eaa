"""The scopes `cases` draws: http by default; with ``scopes="auto"`` all the
target supports (the built-in models, the user's layers as declared, an app's
routes); in proportion to the weights; and ``--scope`` with weights or ``auto``
on the command line."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import InvalidArgument
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from asgifuzz._cli.options import scopes_header, scopes_option
from asgifuzz._targets.config import TargetConfig
from asgifuzz._targets.specs import middleware_target, scoped
from asgifuzz.models import Case
from asgifuzz.strategies import cases
from asgifuzz.strategies._scopes import (
    SCOPE_WEIGHTS,
    described,
    scope_weights,
    supported_scopes,
)
from asgifuzz.strategies._user import allow_app, allow_middleware


class PassThrough:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


async def _ws(ws: Any) -> None:
    await ws.close()


async def _home(request: Any) -> Any:
    raise NotImplementedError  # never requested: only the routes are read


HTTP_APP = Starlette(routes=[Route("/", _home)])
WS_APP = Starlette(routes=[Route("/", _home), WebSocketRoute("/ws", _ws)])


def _scopes_drawn(strategy: Any, n: int = 120) -> Counter[str]:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(case: Case) -> None:
        seen["lifespan" if case.lifespan is not None else case.scope] += 1

    draw()
    return seen


def test_the_default_is_http_and_auto_draws_every_scope_mostly_http() -> None:
    assert set(_scopes_drawn(cases(), n=30)) == {"http"}
    seen = _scopes_drawn(cases(scopes="auto"), n=200)
    assert set(seen) == {"http", "websocket", "lifespan"}
    assert seen["http"] > seen["websocket"] + seen["lifespan"]


def _target(entry: dict[str, Any]) -> Any:
    kind = allow_middleware({"P": entry})[0]
    return middleware_target(kind.removeprefix("user."))


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        (None, ("http", "websocket", "lifespan")),
        (["http"], ("http",)),
        (["http", "websocket"], ("http", "websocket")),
    ],
)
def test_the_users_layers_support_what_they_declare(
    declared: list[str] | None, expected: tuple[str, ...]
) -> None:
    entry: dict[str, Any] = {"spec": PassThrough}
    if declared is not None:
        entry["scopes"] = declared
    with scoped(({}, {})):
        assert supported_scopes([_target(entry)], None) == expected


def test_an_app_supports_http_and_its_websocket_routes() -> None:
    with scoped(({}, {})):
        plain = allow_app(HTTP_APP, lifespan=False)
        assert supported_scopes([], plain) == ("http",)
        assert supported_scopes([], allow_app(WS_APP, lifespan=False)) == (
            "http",
            "websocket",
        )
        declared = _target({"spec": PassThrough, "scopes": ["http"]})
        assert supported_scopes([declared], allow_app(WS_APP)) == ("http",)
        seen = _scopes_drawn(cases(app=WS_APP, lifespan=False, scopes="auto"), n=80)
        assert set(seen) <= {"http", "websocket"}
        assert "http" in seen


def test_weights_choose_the_mix() -> None:
    seen = _scopes_drawn(cases(scopes={"http": 1, "websocket": 3}), n=200)
    assert set(seen) == {"http", "websocket"}
    assert seen["websocket"] > seen["http"]
    assert _scopes_drawn(cases(scopes=["websocket"]), n=20) == {"websocket": 20}


def test_scope_weights_and_their_errors() -> None:
    assert scope_weights(["websocket", "http"]) == {
        "http": SCOPE_WEIGHTS["http"],
        "websocket": SCOPE_WEIGHTS["websocket"],
    }
    assert scope_weights({"lifespan": 2, "http": 5}) == {"http": 5, "lifespan": 2}
    with pytest.raises(InvalidArgument, match="at least 1"):
        scope_weights({"http": 0})
    with pytest.raises(InvalidArgument, match="unknown"):
        scope_weights({"ftp": 1})
    assert supported_scopes([], None) == ("http", "websocket", "lifespan")
    assert described({"http": 8, "websocket": 2}) == "http (8/10), websocket (2/10)"


def test_the_scope_option_takes_weights() -> None:
    assert scopes_option("http=3, websocket") == (
        ("http", 3),
        ("websocket", SCOPE_WEIGHTS["websocket"]),
    )
    assert scopes_option("lifespan,http") == (
        ("http", SCOPE_WEIGHTS["http"]),
        ("lifespan", SCOPE_WEIGHTS["lifespan"]),
    )
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        scopes_option("http=lots")
    with pytest.raises(argparse.ArgumentTypeError, match="--scope "):
        scopes_option("http=0")


def test_the_header_names_the_scopes() -> None:
    assert scopes_header(TargetConfig()) == "http"
    assert scopes_header(TargetConfig(scopes="auto")) == (
        "http (8/10), websocket (1/10), lifespan (1/10)"
    )
    chosen = TargetConfig(scopes=(("http", 1), ("websocket", 1)))
    assert scopes_header(chosen) == "http (1/2), websocket (1/2)"
    assert not chosen.plain
    assert TargetConfig().plain
    assert scopes_option(" auto ") == "auto"
    with scoped(({}, {})):
        mine = TargetConfig(
            middleware=("starlette.middleware.gzip:GZipMiddleware",), scopes="auto"
        )
        assert scopes_header(mine).startswith("http (8/10)")
