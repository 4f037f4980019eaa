"""The watch for a user target that fails every case (a likely misconfiguration),
in this process: what counts as a case it failed, and what the report says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from asgifuzz._campaign.misconfig import Misconfiguration, Watch, missing
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets import specs as _targets
from asgifuzz._targets.config import TargetConfig
from asgifuzz.models import Case
from asgifuzz.models._parts import Layer, Request, Stack

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test allows is forgotten after it."""
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))
    monkeypatch.setattr(_targets, "_APPS", dict(_targets._APPS))


BACKENDS = ("asyncio", "trio")


@pytest.mark.parametrize(
    ("raised", "line", "says"),
    [
        (
            "KeyError: 'app'",
            'scope["app"].state.db',
            "scope['app'] (a Starlette app sets it for what runs inside it)",
        ),
        ("KeyError: 'user'", "scope['user']", "scope['user']"),
        (
            "KeyError: 'db'",
            "config['db']",
            "the key 'db' (in the scope, or in a mapping it reads)",
        ),
        (
            "AttributeError: 'State' object has no attribute 'db'",
            "",
            "the attribute 'db' of a State object (app.state is set by the app, "
            "e.g. at startup; request.state by the app or an outer middleware)",
        ),
        (
            "AttributeError: 'Settings' object has no attribute 'url'",
            "",
            "the attribute 'url' of a Settings object",
        ),
        ("AttributeError: can't set attribute", "", ""),
        ("ValueError: no", "", ""),
    ],
)
def test_what_was_missing(raised: str, line: str, says: str) -> None:
    assert missing(raised, line) == says


@pytest.fixture
def needy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The middleware of ``needy.py``, allowed under their class names."""
    monkeypatch.syspath_prepend(str(HERE))
    middleware = ("needy:NeedsUser", "needy:OnlyOnPut")
    TargetConfig(middleware=middleware).allow()


def _case(*kinds: str, method: str = "GET", query: str = "") -> Case:
    layers = tuple(Layer(k) for k in kinds)
    return Case(stack=Stack(layers=layers), request=Request(method=method, query=query))


def _watch(watch: Watch, cases: list[Case]) -> list[Misconfiguration | None]:
    return [watch.observe(c, judge(c, BACKENDS)) for c in cases]


@pytest.mark.usefixtures("needy")
def test_a_layer_that_raises_on_each_distinct_case_is_reported_at_the_nth() -> None:
    cases = [_case("user.NeedsUser", query=f"q={n}") for n in range(3)]
    seen = _watch(Watch(cases=3), [cases[0], cases[0], cases[1], cases[2]])
    assert seen[:3] == [None, None, None]  # the same case twice counts once
    found = seen[3]
    assert found is not None
    assert found.target == "user.NeedsUser"
    assert found.spec == "needy:NeedsUser"
    text = found.describe()
    assert text.startswith(
        "needy:NeedsUser raised on every one of the first 3 cases that reached it"
    )
    assert "  raised: AttributeError: 'State' object has no attribute 'user'" in text
    assert "  at: needy.py:31 in NeedsUser.dispatch: request.state.user" in text
    assert found.to_data()["cases"] == 3


@pytest.mark.usefixtures("needy")
def test_cases_that_never_reach_the_layer_do_not_count() -> None:
    # A short circuit above it answers first; a stack without it has no say.
    watch = Watch(cases=2)
    above = [_case("asgi.short_circuit", "user.NeedsUser", query=f"{n}") for n in "ab"]
    assert _watch(watch, [*above, _case(), _case("asgi.passthrough")]) == [None] * 4
    assert watch.seen["user.NeedsUser", "http"].cases == set()


@pytest.mark.usefixtures("needy")
def test_a_layer_that_passes_one_case_is_never_reported() -> None:
    watch = Watch(cases=2)
    puts = [_case("user.OnlyOnPut", method="PUT", query=f"{n}") for n in range(4)]
    passes = _case("user.OnlyOnPut", method="GET")
    assert _watch(watch, [puts[0], passes, *puts[1:]]) == [None] * 5
    assert watch.seen["user.OnlyOnPut", "http"].passed


@pytest.mark.usefixtures("needy")
def test_the_watch_ends_after_its_cases() -> None:
    watch = Watch(cases=2, watch_cases=1)
    cases = [_case("user.NeedsUser", query=f"{n}") for n in range(3)]
    assert _watch(watch, cases) == [None] * 3
    assert len(watch.seen["user.NeedsUser", "http"].cases) == 1


@pytest.mark.usefixtures("needy")
def test_each_scope_is_watched_on_its_own() -> None:
    # NeedsUser (a BaseHTTPMiddleware) lets websocket sessions by and fails
    # every HTTP case: a websocket session it passed does not clear it.
    ws = replace(_case("user.NeedsUser"), scope="websocket")
    watch = Watch(cases=2)
    http = [_case("user.NeedsUser", query=f"q={n}") for n in range(2)]
    seen = _watch(watch, [ws, http[0], http[1]])
    assert seen[:2] == [None, None]
    found = seen[2]
    assert found is not None
    assert (found.scope, found.to_data()["scope"]) == ("http", "http")
    assert watch.seen["user.NeedsUser", "websocket"].passed
    assert "first 2 cases that reached it" in found.describe()
    assert "first 2 websocket cases" in replace(found, scope="websocket").describe()
