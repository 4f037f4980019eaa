"""The garbage collector around a run (asgifuzz._driver.collector)."""

from __future__ import annotations

import gc
import warnings
import weakref

from asgifuzz._driver.runner import run
from asgifuzz._types import Receive, Scope, Send
from asgifuzz.models import Case, Endpoint, Layer, Stack


class _Cycle:
    """An object that refers to itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


class _Warns(_Cycle):
    """A cycle that says when it is collected."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __del__(self) -> None:
        warnings.warn(self.text, RuntimeWarning, stacklevel=1)


def test_garbage_made_before_a_run_is_collected_outside_its_window(
    backend: str,
) -> None:
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        _Warns("garbage from before the run")  # unreachable, but a cycle
        outcome = run(Case(), backend)
    assert not [w for w in outcome.warnings if "from before the run" in w]
    assert [w for w in outside if "from before the run" in str(w.message)]


def test_a_cycle_the_run_leaves_is_collected_inside_its_window(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        _Warns("garbage of the run")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    outcome = run(Case(), backend, app=app)
    assert "RuntimeWarning: garbage of the run" in outcome.warnings


def test_garbage_between_runs_does_not_pile_up(backend: str) -> None:
    """Issue 11: young garbage between runs (Hypothesis' choice trees) is
    collected by the next run at the latest, not kept past the oldest
    generation's count (10-18 MB/s of a fuzz process)."""
    alive = [0]

    def freed() -> None:
        alive[0] -= 1

    per_run, runs = 200, 100
    for _ in range(runs):
        run(Case(), backend)
        for _ in range(per_run):
            weakref.finalize(_Cycle(), freed)
            alive[0] += 1
    # What the last batch left, and what an automatic collection caught while
    # it was still referenced (in generation 1 until its next collection).
    assert alive[0] < 5 * per_run, f"{alive[0]} of {per_run * runs} still alive"


def test_what_exists_before_the_first_run_is_frozen_once(backend: str) -> None:
    run(Case(), backend)
    frozen = gc.get_freeze_count()
    for _ in range(3):
        run(Case(), backend)
    assert frozen > 0
    assert gc.get_freeze_count() == frozen


def test_runs_back_to_back_keep_the_heap_flat() -> None:
    """A replay loop allocates too little between runs for CPython to start a
    collection of its own: what survives each run's collection (in generation
    1, garbage later) is still collected."""
    case = Case(
        stack=Stack(layers=(Layer("bhm.passthrough"),)), endpoint=Endpoint(kind="raise")
    )
    runs = 300
    run(case, "asyncio")
    before = len(gc.get_objects())
    for _ in range(runs):
        run(case, "asyncio")
    assert len(gc.get_objects()) - before < runs
