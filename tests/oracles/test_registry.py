"""The registry of invariants, the facts the checks read, and judging as a pure
function of an outcome (judging twice gives the same; the outcome is untouched)."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_oracles import outcome

from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.runner import run
from asgifuzz._errors import ModelError
from asgifuzz._oracles.agreement import agreement
from asgifuzz._oracles.facts import facts
from asgifuzz._oracles.registry import INVARIANTS, judge_outcome, rank
from asgifuzz._oracles.transparency import transparency
from asgifuzz._oracles.verdict import Verdict
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case, Endpoint, Layer, Request, Stack
from asgifuzz.strategies import cases

PACKAGE = Path(__file__).resolve().parents[2] / "asgifuzz"


def test_the_registry_lists_i1_to_i11_in_rank_order_i10_last() -> None:
    http = [*(f"I{n}" for n in range(1, 10)), "I11"]
    websocket = ["W1", "W4", "W2", "W3", "W5"]
    lifespan = [f"L{n}" for n in range(1, 5)]
    extensions = ["X1", "X2", "X3"]
    assert list(INVARIANTS) == [*http, *websocket, *lifespan, *extensions, "I10"]
    assert [rank(i) for i in INVARIANTS] == list(range(len(INVARIANTS)))
    for id_, inv in INVARIANTS.items():
        assert inv.id == id_
        assert inv.title
        assert inv.tags
        # Per run or case-level: exactly one kind of check.
        assert (inv.check is None) != (inv.case_check is None), id_
    assert INVARIANTS["I8"].case_check is transparency
    assert INVARIANTS["I10"].case_check is agreement
    assert set(INVARIANTS["I10"].needs) == {*http, *lifespan, *extensions}
    assert INVARIANTS["W5"].case_check is agreement
    assert set(INVARIANTS["W5"].needs) == {"W1", "W2", "W3", "W4", "I7"}


def test_one_name_invariants_in_the_package() -> None:
    defined = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            if any(isinstance(t, ast.Name) and t.id == "INVARIANTS" for t in targets):
                defined.append(path.relative_to(PACKAGE.parent).as_posix())
    assert defined == ["asgifuzz/_oracles/registry.py"]


def test_first_is_the_lowest_rank_and_i10_last() -> None:
    verdict = Verdict(Case())
    verdict.violations = {
        "both": [Violation("I10", "x")],
        "asyncio": [Violation("I9", "x", "endpoint"), Violation("I2", "x", "type")],
        "trio": [Violation("I5", "x", "never")],
    }
    assert verdict.first() == ("asyncio", Violation("I2", "x", "type"))


def _snapshot(o: Outcome) -> Any:
    """What judging could change in an outcome (exceptions by identity)."""
    rec, r = o.recorder, o.response
    return (
        id(o.escaped),
        list(o.escaped_frames),
        (o.returned, o.hung, o.app_cancelled, o.timed_out),
        (r.started, r.status, list(r.headers), r.body, r.body_messages, r.complete),
        (list(o.pending_tasks), list(o.warnings), list(o.unraisable)),
        list(rec.boundaries),
        [
            (
                e.tick,
                e.time,
                e.where,
                e.kind,
                copy.deepcopy(e.message),
                e.detail,
                e.exc_type,
            )
            for e in rec.events
        ],
        [id(e) for e in rec.raised],
        [id(e) for e in rec.handled],
        [(x.who, x.data, x.complete, x.error, x.layer) for x in rec.reads],
        [
            (b.owner, b.layer, b.runs, b.started, b.finished, id(b.raised))
            for b in rec.background
        ],
        (list(rec.chunks_made), list(rec.disconnects_seen), list(rec.crossed)),
        (rec.response_complete, rec.disconnected),
    )


def _judged(o: Outcome) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(v.key, v.message, v.frames) for v in judge_outcome(o)]


def _assert_pure(o: Outcome) -> None:
    before = _snapshot(o)
    first = _judged(o)
    assert _snapshot(o) == before
    assert _judged(o) == first
    assert _snapshot(o) == before


def test_judging_a_copied_group_leaves_the_outcome_alone() -> None:
    """The canonical form of a copy of the model's group lives in the facts,
    not in the outcome (the judge used to write it back)."""
    inner = ModelError("the endpoint")
    group = ExceptionGroup("g", [inner])
    copied = group.derive([inner])
    o = outcome(escaped=copied, raised=[group], handled=[group.derive([inner])])
    _assert_pure(o)
    assert o.escaped is copied
    assert facts(o).escaped is group


@pytest.mark.parametrize(
    "case",
    [
        Case(stack=Stack(layers=(Layer("bhm.catch"),)), endpoint=Endpoint("raise")),
        Case(
            stack=Stack(layers=(Layer("asgi.read_body"), Layer("bhm.background"))),
            endpoint=Endpoint("echo", background="raise"),
            request=Request(body=(b"ab", b"cd")),
        ),
        Case(endpoint=Endpoint("raise", group=True)),
    ],
)
def test_judging_a_run_twice_gives_the_same(case: Case) -> None:
    _assert_pure(run(case, "asyncio"))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=cases())
def test_judging_is_pure_for_any_case(case: Case) -> None:
    _assert_pure(run(case, "asyncio"))


def test_records_carry_structured_identity() -> None:
    case = Case(
        stack=Stack(layers=(Layer("asgi.read_body"), Layer("bhm.background"))),
        endpoint=Endpoint("echo", background="raise"),
        request=Request(body=(b"ab",)),
    )
    rec = run(case, "asyncio").recorder
    assert [(r.who, r.layer) for r in rec.reads] == [
        ("layer 0 (asgi.read_body)", 0),
        ("endpoint", None),
    ]
    assert sorted((b.owner, b.layer) for b in rec.background) == [
        ("endpoint", None),
        ("layer 1 (bhm.background)", 1),
    ]
    endpoint_task = next(b for b in rec.background if b.layer is None)
    assert isinstance(endpoint_task.raised, ModelError)
    raised = [e for e in rec.events if e.kind == "raise"]
    assert all(e.exc_type and e.detail.startswith(e.exc_type) for e in raised)
