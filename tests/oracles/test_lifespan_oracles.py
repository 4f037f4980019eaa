"""L1-L4, each shown to fire on a hand-built bad lifespan transcript and to stay
quiet on the correct one, and on real runs of the models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from asgifuzz._driver.lifespan import Lifespan as ServerSide
from asgifuzz._driver.outcome import Outcome
from asgifuzz._oracles.facts import facts
from asgifuzz._oracles.lifespan import (
    failed_startup,
    lifespan_messages,
    state_reaches,
    unsupported_app,
)
from asgifuzz._oracles.registry import judge_outcome
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, Layer, Lifespan, Stack
from asgifuzz.models._record import Event, LifespanRecord, Recorder

STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}
COMPLETE = {"type": "lifespan.startup.complete"}
FAILED = {"type": "lifespan.startup.failed", "message": "no database"}
DOWN = {"type": "lifespan.shutdown.complete"}
Step = tuple[int, str, dict[str, Any] | None]


def through(where: int, *steps: tuple[str, dict[str, Any] | None]) -> list[Step]:
    return [(where, kind, message) for kind, message in steps]


def _server_side() -> ServerSide:
    """The driver's server side, made in an event loop: anyio 3 makes an
    ``anyio.Event`` only there (anyio 4 also outside one)."""

    async def make() -> ServerSide:
        return ServerSide()

    return anyio.run(make)


def session(
    events: Sequence[Step],
    *,
    completed: bool = True,
    startup_failed: bool = False,
    served: bool = True,
    seen: dict[str, Any] | None = None,
    written: dict[str, str] | None = None,
    model: Lifespan | None = None,
    gave_up: int | None = None,
) -> Outcome:
    """A session's outcome: server -> layer 0 (user.Mw) -> app, with ``events``
    (``raise`` and ``return`` events have no message)."""
    rec = Recorder(boundaries=["layer 0 (user.Mw)", "app"])
    record = LifespanRecord(seen=seen, written=dict(written or {}))
    record.writers = dict.fromkeys(record.written, "the app")
    for where, kind, message in events:
        detail = "ModelError: boom" if kind == "raise" else ""
        record.events.append(
            Event(rec.tick(), 0.0, where, kind, message, detail=detail)
        )
    rec.lifespan = record
    server = _server_side()
    server.completed, server.startup_failed, server.gave_up = (
        completed,
        startup_failed,
        gave_up,
    )
    case = Case(stack=Stack((Layer("user.Mw"),)), lifespan=model or Lifespan())
    return Outcome(
        case=case, backend="asyncio", recorder=rec, lifespan=server, served=served
    )


def good(outer: dict[str, Any], inner: dict[str, Any] | None = None) -> list[Step]:
    """Startup through one pass-through layer; the app answers ``inner``."""
    inner = inner if inner is not None else outer
    return [
        *through(0, ("receive", STARTUP)),
        *through(1, ("receive", STARTUP), ("send", inner)),
        *through(0, ("send", outer)),
    ]


def keys(o: Outcome) -> list[str]:
    f = facts(o)
    return [
        v.key
        for check in (lifespan_messages, failed_startup, state_reaches, unsupported_app)
        for v in check(f)
    ]


def test_l1_quiet_on_messages_passed_through() -> None:
    assert keys(session(good(COMPLETE))) == []


@pytest.mark.parametrize(
    ("events", "key"),
    [
        # The layer rewrites the app's failure (L2 says it too).
        (good(COMPLETE, FAILED), "L1:changed"),
        # The layer sends nothing up.
        (good(COMPLETE, COMPLETE)[:-1], "L1:lost"),
        # The layer answers, never calling the app.
        ([*through(0, ("receive", STARTUP), ("send", COMPLETE))], "L1:invented"),
        # The server's shutdown never reaches the app.
        (
            [*good(COMPLETE), *through(0, ("receive", SHUTDOWN), ("send", DOWN))],
            "L1:invented",
        ),
    ],
)
def test_l1_fires_on_a_layer_that_changes_loses_or_invents(
    events: list[Step], key: str
) -> None:
    assert key in keys(session(events))


def test_l1_lets_a_layer_answer_for_an_app_without_lifespan() -> None:
    events = [
        *through(0, ("receive", STARTUP)),
        *through(1, ("return", None)),
        *through(0, ("send", COMPLETE)),
    ]
    assert keys(session(events)) == []


def test_l2_quiet_when_the_failure_reaches_the_server() -> None:
    assert keys(session(good(FAILED), completed=False, startup_failed=True)) == []
    raised = [
        *through(0, ("receive", STARTUP)),
        *through(1, ("receive", STARTUP), ("raise", None)),
        *through(0, ("raise", None)),
    ]
    assert keys(session(raised, completed=False)) == []


def test_l2_fires_on_a_failure_reported_as_complete_or_hidden() -> None:
    assert "L2:complete" in keys(session(good(COMPLETE, FAILED)))
    swallowed = [
        *through(0, ("receive", STARTUP)),
        *through(1, ("receive", STARTUP), ("raise", None)),
        *through(0, ("return", None)),
    ]
    assert keys(session(swallowed, completed=False)) == ["L2:hidden"]


def test_l3_quiet_when_the_state_reaches_the_request() -> None:
    written = {"db": "db of the app"}
    assert keys(session(good(COMPLETE), seen=dict(written), written=written)) == []


def test_l3_fires_on_state_lost_or_changed() -> None:
    written = {"db": "db of the app"}
    assert keys(session(good(COMPLETE), seen={}, written=written)) == ["L3:lost"]
    assert keys(session(good(COMPLETE), seen={"db": "x"}, written=written)) == [
        "L3:changed"
    ]
    # The model's startup never ran (a layer answered for it): its state is missing.
    answered = [*through(0, ("receive", STARTUP), ("send", COMPLETE))]
    assert "L3:lost" in keys(session(answered, seen={}))


def test_l4_quiet_when_an_app_without_lifespan_just_returns() -> None:
    events = [*through(1, ("raise", None)), *through(0, ("raise", None))]
    assert keys(session(events, completed=False)) == []


def test_l4_fires_when_a_layer_breaks_an_app_without_lifespan() -> None:
    failed = [
        *through(0, ("receive", STARTUP)),
        *through(1, ("raise", None)),
        *through(0, ("send", FAILED)),
    ]
    assert "L4:failed" in keys(
        session(failed, completed=False, startup_failed=True, served=False)
    )
    hung = [*through(0, ("receive", STARTUP)), *through(1, ("return", None))]
    assert "L4:hang" in keys(session(hung, completed=False, served=False, gave_up=99))


def test_what_follows_the_servers_giving_up_is_not_judged() -> None:
    # Starlette reports its cancellation as a failure; the layer changed it,
    # but the server had given up by then.
    events = good(COMPLETE, FAILED)
    assert keys(session(events, gave_up=2)) == []


def test_an_http_case_is_not_judged_by_them() -> None:
    o = Outcome(case=Case(), backend="asyncio", recorder=Recorder())
    assert keys(o) == []


def test_a_session_that_served_nothing_skips_the_http_invariants() -> None:
    o = session(good(FAILED), completed=False, startup_failed=True, served=False)
    assert judge_outcome(o) == []


@pytest.mark.parametrize(
    ("layer", "lifespan", "expected"),
    [
        ("lifespan.wrap", Lifespan(), set()),
        ("asgi.passthrough", Lifespan(startup="fail"), set()),
        ("bhm.passthrough", Lifespan(app="unsupported", startup="raise"), set()),
        ("lifespan.handle", Lifespan(), {"L1:invented", "L3:lost"}),
        ("lifespan.handle", Lifespan(startup="fail"), {"L1:invented"}),
    ],
)
def test_real_sessions(layer: str, lifespan: Lifespan, expected: set[str]) -> None:
    case = Case(stack=Stack((Layer(layer),)), lifespan=lifespan)
    verdict = judge(case)
    got = {v.key for vs in verdict.violations.values() for v in vs}
    assert got == expected


def test_l1_fires_on_a_server_message_changed_or_invented_on_its_way_down() -> None:
    changed = [
        *through(0, ("receive", STARTUP)),
        *through(1, ("receive", SHUTDOWN)),
    ]
    assert keys(session(changed, completed=False)) == ["L1:changed"]
    invented = [*through(1, ("receive", STARTUP))]
    assert keys(session(invented, completed=False)) == ["L1:invented"]
