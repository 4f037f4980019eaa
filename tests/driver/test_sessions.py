"""Lifespan sessions on both backends: the protocol's order, virtual time, and
the same transcript every time."""

from __future__ import annotations

import time

import pytest
from hypothesis import given

from asgifuzz._driver.runner import run
from asgifuzz._driver.sessions import STARTUP_TIMEOUT
from asgifuzz._driver.timeline import mermaid, timeline
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, Layer, Lifespan, Stack
from asgifuzz.strategies import lifespan_cases


def _transcript(case: Case, backend: str) -> list[tuple[int, str, str | None, float]]:
    record = run(case, backend).recorder.lifespan
    assert record is not None
    return [
        (e.where, e.kind, (e.message or {}).get("type"), e.time) for e in record.events
    ]


def test_startup_then_the_request_then_shutdown(backend: str) -> None:
    case = Case(stack=Stack((Layer("bhm.passthrough"),)), lifespan=Lifespan())
    outcome = run(case, backend)
    assert outcome.served
    assert outcome.response.status == 200
    server = [
        (e.kind, (e.message or {}).get("type"))
        for e in outcome.recorder.lifespan.events  # type: ignore[union-attr]
        if e.where == 0
    ]
    assert server == [
        ("receive", "lifespan.startup"),
        ("send", "lifespan.startup.complete"),
        ("receive", "lifespan.shutdown"),
        ("send", "lifespan.shutdown.complete"),
        ("return", None),
    ]
    # The request came between the two (its first event after startup).
    first_http = next(e.tick for e in outcome.recorder.events if e.kind == "send")
    ticks = [
        e.tick
        for e in outcome.recorder.lifespan.events  # type: ignore[union-attr]
        if e.where == 0
    ]
    assert ticks[1] < first_http < ticks[2]


@pytest.mark.parametrize("phase", ["startup", "shutdown"])
def test_a_hang_ends_in_virtual_time(backend: str, phase: str) -> None:
    case = Case(lifespan=Lifespan(**{phase: "hang"}))  # type: ignore[arg-type]
    start = time.perf_counter()
    outcome = run(case, backend)
    assert time.perf_counter() - start < 5  # wall clock: virtual time jumped
    assert outcome.served == (phase == "shutdown")
    assert not outcome.hung
    notes = [e.detail for e in outcome.recorder.events if e.kind == "note"]
    if phase == "startup":
        assert outcome.lifespan is not None
        assert outcome.lifespan.gave_up is not None
        assert any(f"after {STARTUP_TIMEOUT:g}s" in n for n in notes)


def test_a_failed_startup_serves_nothing(backend: str) -> None:
    outcome = run(Case(lifespan=Lifespan(app="raw", startup="fail")), backend)
    assert not outcome.served
    assert not outcome.response.started
    assert outcome.lifespan is not None
    assert outcome.lifespan.failed == "lifespan.startup.failed: startup failed"


def test_an_app_without_lifespan_is_served(backend: str) -> None:
    for startup in ("raise", "complete"):
        case = Case(lifespan=Lifespan(app="unsupported", startup=startup))
        outcome = run(case, backend)
        assert outcome.served
        assert outcome.response.status == 200
        assert outcome.lifespan is not None
        assert not outcome.lifespan.completed


@given(case=lifespan_cases())
def test_a_session_replays_to_the_same_transcript(case: Case) -> None:
    for backend in ("asyncio", "trio"):
        assert _transcript(case, backend) == _transcript(case, backend)


@given(case=lifespan_cases())
def test_the_built_in_layers_pass_the_lifespan_through(case: Case) -> None:
    # The request may show Starlette's known HTTP bugs; the lifespan is clean.
    verdict = judge(case)
    found = [v.key for vs in verdict.violations.values() for v in vs]
    assert not [k for k in found if k.startswith("L")], found


def test_the_timeline_shows_the_lifespan_messages() -> None:
    outcome = run(Case(stack=Stack((Layer("lifespan.wrap"),)), lifespan=Lifespan()))
    text = timeline(outcome)
    assert "server -> layer 0 (lifespan.wrap): lifespan.startup" in text
    assert "app -> layer 0 (lifespan.wrap): lifespan.shutdown.complete" in text
    assert text.index("lifespan.startup.complete") < text.index("http.response.start")
    assert "b0->>b1: " in mermaid(outcome)
