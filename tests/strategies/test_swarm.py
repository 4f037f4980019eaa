"""Swarm generation: the feature set, drawing within it, shrinking toward fewer
features, and the switch that turns it off."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from asgifuzz.models import (
    DISCONNECTS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    SERVERS,
    Case,
    Client,
    Endpoint,
)
from asgifuzz.strategies import _swarm, cases
from asgifuzz.strategies._parts import HEADERS
from asgifuzz.strategies._vocabulary import BODY_TYPES, CONTENT_GROUPS, content_group

ENOUGH = settings(max_examples=300, derandomize=True, database=None)


@st.composite
def feature_sets(draw: st.DrawFn) -> _swarm.Features:
    return _swarm.draw_features(draw)


@given(feature_sets())
def test_each_category_keeps_its_simplest_kind_first(f: _swarm.Features) -> None:
    for kinds, registry in (
        (f.layers, LAYER_KINDS),
        (f.endpoints, ENDPOINT_KINDS),
        (f.disconnects, DISCONNECTS),
        (f.servers, SERVERS),
    ):
        assert kinds[0] == registry[0]
        assert list(kinds) == [k for k in registry if k in kinds]  # registry order
    assert all(b in BODY_TYPES for b in f.bodies)


def test_features_shrink_to_the_simplest_alone() -> None:
    f = find(feature_sets(), lambda _: True)
    assert f == _swarm.Features(
        ("bhm.passthrough",), ("plain",), (), ("never",), ("uvicorn",)
    )


def test_features_shrink_to_fewer() -> None:
    # Asking for one behaviour on leaves that behaviour alone (of its family).
    f = find(feature_sets(), lambda f: "bhm.read_body" in f.layers, settings=ENOUGH)
    assert f.layers == ("bhm.passthrough", "bhm.read_body")
    f = find(feature_sets(), lambda f: "asgi.catch" in f.layers, settings=ENOUGH)
    assert f.layers == (
        "bhm.passthrough",
        "asgi.passthrough",
        "bhm.catch",
        "asgi.catch",
    )
    assert f.endpoints == ("plain",)


def test_a_sparse_case_ands_its_masks() -> None:
    # 17 layer features: three 7-bit draws a mask, and a sparse case ANDs one,
    # two or three masks (each feature on 1/2, 1/4, 1/8 of the time).
    drawn = iter([0b1010101, 0b1111111, 0b0000111, 0b1100110, 0b0000000, 0b0000101])

    def draw(_: object) -> int:
        return next(drawn)

    width = len(_swarm.LAYER_FEATURES)
    assert _swarm._draw_mask(cast(st.DrawFn, draw), width, sparse=1) == (
        0b1010101 & 0b1100110 | (0b1111111 & 0) << 7 | (0b0000111 & 0b0000101) << 14
    )
    assert next(drawn, None) is None  # two masks of three draws each


def test_sparse_feature_sets_hold_fewer_features() -> None:
    # Each AND halves the features on: mean counts near 17/2, 17/4, 17/8.
    counts: dict[int, list[int]] = {0: [], 1: [], 2: []}

    @settings(max_examples=300, derandomize=True, database=None)
    @given(st.data())
    def one(data: st.DataObject) -> None:
        sparse = data.draw(st.integers(0, 2))
        mask = data.draw(st.composite(lambda d: _swarm._draw_mask(d, 17, sparse))())
        counts[sparse].append(bin(mask).count("1"))

    one()
    means = {k: sum(v) / len(v) for k, v in counts.items() if v}
    assert means[0] > means[1] > means[2]
    assert 6 < means[0] < 11
    assert means[2] < 4


def test_the_asgi_family_and_starlette_middlewares_are_features() -> None:
    on = _swarm.LAYER_FEATURES.index
    assert "asgi.add_header" not in _swarm._layer_kinds(1 << on("add_header"))
    both = _swarm._layer_kinds(1 << on("add_header") | 1 << on("asgi"))
    assert {"bhm.add_header", "asgi.add_header", "asgi.passthrough"} <= set(both)
    gzip = _swarm._layer_kinds(1 << on("starlette.gzip"))
    assert gzip == ("bhm.passthrough", "starlette.gzip")


def test_content_groups() -> None:
    assert {content_group(b.content_type) for b in BODY_TYPES} == set(CONTENT_GROUPS)
    assert content_group("Application/JSON; charset=utf-8") == "json"
    assert content_group("image/png") == "other"
    assert _swarm._bodies(0) == ()
    json_only = _swarm._bodies(1 << CONTENT_FEATURES_INDEX["json"])
    assert json_only
    assert {content_group(b.content_type) for b in json_only} == {"json"}


CONTENT_FEATURES_INDEX = {g: i for i, g in enumerate(_swarm.CONTENT_FEATURES)}


def test_a_kind_that_is_off_stands_for_one_that_is_on() -> None:
    enabled = ("plain", "echo", "raise")
    assert _swarm.within("echo", ENDPOINT_KINDS, enabled) == "echo"
    assert _swarm.within("plain", ENDPOINT_KINDS, enabled) == "plain"
    # Off kinds map onto the enabled ones after the first, in turn.
    mapped = {_swarm.within(k, ENDPOINT_KINDS, enabled) for k in ENDPOINT_KINDS}
    assert mapped == set(enabled)
    assert {
        _swarm.within(k, ENDPOINT_KINDS, enabled)
        for k in ENDPOINT_KINDS
        if k not in enabled
    } == {"echo", "raise"}
    assert _swarm.within("sync", ENDPOINT_KINDS, ("plain",)) == "plain"


FIXED = _swarm.Features(
    layers=("bhm.passthrough", "bhm.read_body", "starlette.gzip"),
    endpoints=("plain", "echo"),
    bodies=tuple(b for b in BODY_TYPES if content_group(b.content_type) == "form"),
    disconnects=("never", "body_message"),
    servers=("uvicorn", "strict"),
)


@given(_swarm.swarm_cases(None, None, None, None, None, "", None, FIXED))
def test_cases_are_drawn_within_their_features(case: Case) -> None:
    assert {la.kind for la in case.stack.layers} <= set(FIXED.layers)
    assert case.endpoint.kind in FIXED.endpoints
    assert case.client.disconnect in FIXED.disconnects
    assert case.server.name in FIXED.servers
    typed = {v for n, v in case.request.headers if n == "content-type"}
    others = {v for n, v in HEADERS if n == "content-type"}
    assert typed - others <= {"application/x-www-form-urlencoded"}
    # Still plain data with the same JSON form.
    assert Case.from_json(case.to_json()) == case


def test_swarm_cases_shrink_toward_simple() -> None:
    case = find(
        cases(swarm=True),
        lambda c: c.client.disconnect != "never" and bool(c.stack.layers),
        settings=ENOUGH,
    )
    assert case.stack.layers
    assert all(la.kind == "bhm.passthrough" for la in case.stack.layers)
    assert case.client in (Client("receive", at=0), Client("response_start"))
    assert case == Case(stack=case.stack, client=case.client)


def test_a_conjunction_shrinks_to_itself() -> None:
    # Two BHM layers above an echo endpoint: the shrunk case holds that and
    # nothing else.
    case = find(
        cases(swarm=True),
        lambda c: (
            [la.family for la in c.stack.layers].count("bhm") >= 2
            and c.endpoint.kind == "echo"
        ),
        settings=settings(max_examples=1000, derandomize=True, database=None),
    )
    assert [la.kind for la in case.stack.layers] == ["bhm.passthrough"] * 2
    assert case.endpoint == Endpoint("echo")
    assert case == Case(stack=case.stack, endpoint=case.endpoint)


@pytest.mark.parametrize(
    ("value", "on"),
    [(None, True), ("1", True), ("0", False), ("off", False), (" No ", False)],
)
def test_the_environment_turns_swarm_off(
    monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool
) -> None:
    if value is None:
        monkeypatch.delenv("ASGIFUZZ_SWARM", raising=False)
    else:
        monkeypatch.setenv("ASGIFUZZ_SWARM", value)
    assert _swarm.swarm_default() is on


def test_swarm_off_draws_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGIFUZZ_SWARM", "0")
    # The plain strategy of the parts, not the swarm's composite.
    assert "swarm_cases" not in repr(cases())
    assert "swarm_cases" in repr(cases(swarm=True))


@given(cases(swarm=True, headers=["x-api-key: k"], cookies=["sid=1"]))
def test_user_headers_and_cookies_with_swarm(case: Case) -> None:
    headers = case.request.headers
    assert ("x-api-key", "k") in headers
    assert any(n == "cookie" and v.startswith("sid=1") for n, v in headers)
