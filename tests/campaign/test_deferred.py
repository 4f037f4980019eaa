"""Shrinking after generation: the rounds of the budget only generate, and
each drawn failure is shrunk after it, from the choices Hypothesis saved."""

from __future__ import annotations

import importlib
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

from asgifuzz._campaign import deferred
from asgifuzz._campaign.deferred import Current, Group, Recording
from asgifuzz._campaign.findings import FuzzReport
from asgifuzz._campaign.loop import fuzz
from asgifuzz._campaign.tally import Round
from asgifuzz._corpus.entries import case_size
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, Client
from asgifuzz.strategies import cases


class FailsOnABody:
    """Pure ASGI, with a bug a request body of 3 bytes or more shows."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        first = [await receive()] if scope["type"] == "http" else []
        if first and len(first[0].get("body", b"")) >= 3:
            _ = [][0]

        async def again() -> Any:
            return first.pop() if first else await receive()

        await self.app(scope, again, send)


def _bodies() -> st.SearchStrategy[Case]:
    """Cases through `FailsOnABody` with one body chunk of up to 64 bytes (the
    simplest, empty, passes; a drawn one mostly fails, not shrunk)."""
    return st.builds(
        lambda c, body: replace(
            c, request=replace(c.request, body=(body,)), client=Client()
        ),
        cases(middleware=[FailsOnABody], builtin=False),
        st.binary(max_size=64),
    )


def test_recording_takes_the_values_saved_under_the_tests_own_key() -> None:
    backing = InMemoryExampleDatabase()
    db = Recording(backing)
    db.save(b"k.pareto", b"p")
    db.save(b"k", b"a")
    db.save(b"k.secondary", b"s")
    db.save(b"k", b"b")
    db.save(b"k", b"a")
    assert db.take() == (b"k", [b"a", b"b"])
    assert db.take() is None  # taken
    assert set(db.fetch(b"k")) == {b"a", b"b"}  # written through
    db.delete(b"k", b"a")
    assert set(backing.fetch(b"k")) == {b"b"}
    assert list(Recording(None).fetch(b"k")) == []  # none: an in-memory one


def test_a_groups_database_holds_only_its_choices_and_writes_through() -> None:
    backing = InMemoryExampleDatabase()
    backing.save(b"k", b"old")
    db = Group(b"k", [b"a", b"b"], {"I1:x"}).database(backing)
    # Under the secondary key: Hypothesis shrinks those (not its own key's).
    assert set(db.fetch(b"k.secondary")) == {b"a", b"b"}
    assert list(db.fetch(b"k")) == []
    db.save(b"k", b"shrunk")
    db.delete(b"k.secondary", b"a")
    assert set(backing.fetch(b"k")) == {b"old", b"shrunk"}
    assert set(db.fetch(b"k.secondary")) == {b"b"}
    assert Current().group is None
    assert Current().skip == set()


def test_a_group_is_spent_after_its_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deferred, "SHRINK_CALLS", 2)
    group = Group(b"k", [])
    assert [group.spent() for _ in range(3)] == [False, False, True]


def test_a_shrinking_round_generates_nothing() -> None:
    report = FuzzReport(backends=("asyncio",))
    this = Round(report, max_examples=5, shrinking=True)
    for _ in range(3):
        this.call(("asyncio:violation",), 1, 0.0)
    this.settle({})  # no statistics: the round was stopped
    assert (report.cases, report.shrink_runs, report.generation_s) == (0, 6, 0.0)
    assert report.outcomes == Counter()


def test_a_drawn_failure_is_seen_in_the_budget_and_shrunk_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = fuzz(max_time=1.0, backends=("asyncio",), strategy=_bodies())
    (shrunk,) = [f for f in report.findings if f.key == "I1:IndexError"]
    # Seen while generating (a generated case), shrunk after.
    assert 0 < shrunk.first_seen_cases <= report.cases
    assert shrunk.first_seen_s < report.elapsed
    assert report.shrink_runs > 0
    verdict = judge(shrunk.case, ("asyncio",))
    assert "I1:IndexError" in {v.key for v in verdict.violations["asyncio"]}
    # With no calls to shrink through, the same run keeps the case as drawn.
    monkeypatch.setattr(deferred, "SHRINK_CALLS", 0)
    again = fuzz(max_time=1.0, backends=("asyncio",), strategy=_bodies())
    (drawn,) = [f for f in again.findings if f.key == "I1:IndexError"]
    assert case_size(shrunk.case) < case_size(drawn.case)


def test_the_environment_can_name_the_keys_to_shrink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = Group(b"k", [], keys={"I1:RuntimeError"})
    b = Group(b"k", [], keys={"I7:asyncgen", "I5:early"})
    monkeypatch.delenv(deferred.ONLY_ENV, raising=False)
    assert deferred.to_shrink([a, b], 60.0) == [a, b]
    monkeypatch.setenv(deferred.ONLY_ENV, " I5:early, I4:response")
    assert deferred.to_shrink([a, b], 60.0) == [b]


def test_the_shrinking_after_the_budget_is_bounded_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As long as the budget, and at least SHRINK_FLOOR: a budget of a second
    # does not make the shrunk case depend on the load.
    (group,) = deferred.to_shrink([Group(b"k", [])], 0.0)
    assert not group.spent()
    assert group.until - time.perf_counter() > deferred.SHRINK_FLOOR - 1
    monkeypatch.setattr(deferred, "SHRINK_FLOOR", 0.0)
    (group,) = deferred.to_shrink([Group(b"k", [])], 0.0)
    assert group.spent()  # no time left: the first call stops it
    (group,) = deferred.to_shrink([Group(b"k", [])], 3600.0)
    assert not group.spent()


# A budget in cases --------------------------------------------------------------


def test_a_case_budget_draws_the_same_cases_on_a_slow_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def run() -> tuple[int, list[Case], list[Case]]:
        seen: list[Case] = []

        def noted(case: Case) -> Case:
            seen.append(case)
            return case

        report = fuzz(
            max_time=60.0,
            max_cases=120,
            backends=("asyncio",),
            strategy=_bodies().map(noted),
        )
        return report.cases, [f.case for f in report.findings], seen

    fast = run()
    # A machine ten times slower: every reading of the clock is later.
    clock, calls = time.perf_counter, [0]

    def slow() -> float:
        calls[0] += 1
        return clock() + calls[0] * 0.01

    monkeypatch.setattr(time, "perf_counter", slow)
    assert run() == fast
    assert fast[0] == 120


def test_a_seed_draws_the_same_cases_whatever_the_process_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hypothesis draws constants from the source of the local modules loaded
    # (`asgifuzz._campaign.constants`): importing one between two runs changed
    # the cases a seed draws (and, in the suite, which bugs a seeded run found).
    def run() -> list[Case]:
        seen: list[Case] = []

        def noted(case: Case) -> Case:
            seen.append(case)
            return case

        fuzz(max_cases=80, backends=("asyncio",), strategy=cases().map(noted))
        return seen

    before = run()
    # Constants that many of the cases' draws permit: small numbers, short
    # lowercase words and bytes.
    words = [chr(97 + n % 26) * (1 + n // 26) for n in range(120)]
    source = f"N = {list(range(1, 400))}\nS = {words}\n"
    source += f"B = {[w.encode() for w in words]}\n"
    (tmp_path / "many_constants.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "many_constants", raising=False)
    importlib.import_module("many_constants")
    assert [c.to_json() for c in run()] == [c.to_json() for c in before]
