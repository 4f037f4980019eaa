"""The shrinking of crashes: the reducer on its own, a try in a forked child,
and the supervisor's side when a shrink cannot finish."""

from __future__ import annotations

import multiprocessing
import time
from itertools import pairwise
from multiprocessing.connection import wait
from pathlib import Path

import pytest

from asgifuzz._campaign.crashes import CrashShrinker, attempt
from asgifuzz._campaign.findings import Finding
from asgifuzz._campaign.reduce import complexity, shrink, simpler
from asgifuzz._campaign.task import Task
from asgifuzz._targets import specs as _targets
from asgifuzz._targets.config import TargetConfig
from asgifuzz.models import Case
from asgifuzz.models._parts import Client, Endpoint, Layer, Request, Server, Stack

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test allows is forgotten after it."""
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))
    monkeypatch.setattr(_targets, "_APPS", dict(_targets._APPS))


BIG = Case(
    stack=Stack(
        layers=(
            Layer("bhm.passthrough", pauses=(1, 2)),
            Layer("starlette.gzip", options={"minimum_size": 3}),
        ),
        mode="wrap",
    ),
    endpoint=Endpoint(kind="echo", pauses=(1, 0)),
    request=Request(
        method="POST",
        path="/a/b",
        query="hello=world",
        headers=(("x-a", "1"), ("x-b", "2")),
        body=(b"abc", b"defgh", b"ij"),
        scheme="https",
    ),
    client=Client("body_message", 2),
    server=Server("hypercorn", 2, 1),
    seed=99,
)


def _needs_query_and_body(case: Case) -> bool:
    return bool(case.request.query) and bool(case.request.body_bytes)


def test_shrinking_keeps_only_what_the_failure_needs() -> None:
    seen: list[Case] = []
    result = shrink(
        BIG,
        _needs_query_and_body,
        deadline=time.monotonic() + 60,
        on_smaller=seen.append,
    )
    assert result.complete
    assert result.case == Case(request=Request(query="h", body=(b"a",)))
    assert seen[-1] == result.case
    assert result.failed == len(seen)
    steps = [complexity(c) for c in [BIG, *seen]]
    assert all(a > b for a, b in pairwise(steps))


def test_every_simpler_case_differs_and_a_minimal_case_has_none() -> None:
    assert all(c != BIG for c in simpler(BIG))
    assert not [c for c in simpler(Case()) if complexity(c) < complexity(Case())]


def test_shrinking_stops_at_the_deadline_or_when_told() -> None:
    late = shrink(BIG, _needs_query_and_body, deadline=time.monotonic() - 1)
    assert (late.case, late.tries, late.complete) == (BIG, 0, False)
    told = shrink(
        BIG, _needs_query_and_body, deadline=time.monotonic() + 60, stop=lambda: True
    )
    assert (told.case, told.complete) == (BIG, False)


def _allowed(app: str) -> Case:
    """A case of ``hostile_apps:<app>`` that sets it off (query and body)."""
    TargetConfig(app=f"hostile_apps:{app}").allow()
    return Case(app="app", request=Request(query="q", body=(b"x",)))


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


@pytest.mark.usefixtures("on_path")
@pytest.mark.parametrize(("app", "code"), [("exit_now", 3), ("segfault", -11)])
def test_a_try_in_a_child_reports_how_the_case_killed_it(app: str, code: int) -> None:
    case = _allowed(app)
    assert attempt(case, ("asyncio",), timeout=30) == code
    survives = Case(app="app", request=Request(query="q"))  # no body: no crash
    assert attempt(survives, ("asyncio",), timeout=30) is None


@pytest.mark.usefixtures("on_path")
def test_a_try_that_hangs_is_killed_and_does_not_count_as_a_crash() -> None:
    case = _allowed("busy")
    start = time.monotonic()
    assert attempt(case, ("asyncio",), timeout=0.3) is None
    assert time.monotonic() - start < 10


def _shrinker(app: str = "", **changes: float) -> CrashShrinker:
    context = multiprocessing.get_context("spawn")
    task = Task(
        max_time=1,
        backends=("asyncio",),
        seed=0,
        targets=TargetConfig(app=app) if app else None,
        **changes,  # type: ignore[arg-type]
    )
    return CrashShrinker(context, task, context.RawValue("b", 0))


def _crash(case: Case = BIG, key: str = "crash:exit") -> Finding:
    return Finding(key=key, backend="asyncio", messages=[f"[{key}] it died"], case=case)


def _run(shrinker: CrashShrinker) -> None:
    """What the supervisor does, until the shrinker is done."""
    end = time.monotonic() + 60
    while shrinker.busy and time.monotonic() < end:
        for conn in wait(shrinker.conns(), timeout=0.1):
            shrinker.receive(conn)  # type: ignore[arg-type]
        shrinker.step()
    assert not shrinker.busy


def test_one_shrink_per_key_and_none_once_the_run_is_stopped() -> None:
    shrinker = _shrinker()
    first, again = _crash(), _crash()
    shrinker.add(first, 3)
    shrinker.add(again, 3)
    assert again.messages[-1].endswith("not shrunk: an earlier crash of this key was")
    shrinker.stop.value = 1
    shrinker.step()
    assert not shrinker.busy
    assert first.messages[-1] == "[crash:exit] not shrunk: the run was stopped first"
    assert first.case == BIG


@pytest.mark.usefixtures("on_path")
def test_a_case_that_does_not_crash_a_fresh_process_is_kept_as_it_ran() -> None:
    shrinker = _shrinker("hostile_apps:exit_now")
    case = Case(app="app", request=Request(query="q", headers=(("a", "b"),)))
    finding = _crash(case)  # no body: exit_now does not exit
    shrinker.add(finding, 3)
    _run(shrinker)
    assert "not shrunk: the case did not crash a fresh process" in finding.messages[-1]
    assert finding.case == case


def test_a_shrinker_that_dies_leaves_the_case_as_it_ran() -> None:
    shrinker = _shrinker("no_such_module_of_anyone:app")  # its import fails there
    finding = _crash()
    shrinker.add(finding, 3)
    _run(shrinker)
    assert (
        "not shrunk: the shrinker process ended (exit status 1) without a result"
        in (finding.messages[-1])
    )
    assert finding.case == BIG


def test_a_shrinker_past_its_time_is_killed_with_what_it_found() -> None:
    shrinker = _shrinker()
    late, stopped = _crash(), _crash(key="crash:signal")
    shrinker.add(late, 3)
    shrinker.add(stopped, -11)
    shrinker.step()  # the first one starts
    shrinker.jobs[0].deadline = time.monotonic() - 100
    shrinker.step()
    assert late.messages[-1] == (
        "[crash:exit] not shrunk: the shrink budget (5s) ran out; the case is as it ran"
    )
    shrinker.step()  # the second one starts
    shrinker.jobs[0].smaller = 1  # as if it had sent a smaller case
    shrinker.stop.value = 1
    shrinker.kill_all()  # what the supervisor does at a second Ctrl-C
    assert not shrinker.busy
    assert stopped.messages[-1] == (
        "[crash:signal] partly shrunk: shrinking was stopped with the run; the case "
        "is the smallest that crashed"
    )
