"""The in-process watchdog's clock: what counts against a case's wall-clock limit."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator

import pytest

from asgifuzz._campaign.watchdog import Watchdog
from asgifuzz._driver import collector

LIMIT = 0.2


def _hold(seconds: float, step: Callable[[], object]) -> Watchdog:
    """Run ``step`` for ``seconds`` of wall-clock time under a `LIMIT` watchdog."""
    dog = Watchdog(LIMIT)
    with dog.armed():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            step()
    return dog


def _full_collection() -> None:
    # As before the process's first run: a full collection of the whole heap.
    setattr(collector, "_frozen", False)  # noqa: B010 (the module's own flag)
    collector.before_run()
    gc.unfreeze()  # the heap stays as large for the next one


@pytest.fixture(autouse=True)
def _heap_as_it_was() -> Iterator[None]:
    """`_full_collection` unfreezes the heap: freeze it again afterwards, as the
    driver's first run left it (the collector's tests check what it froze)."""
    frozen = gc.get_freeze_count() > 0
    yield
    if frozen:
        gc.freeze()


def _busy() -> None:
    sum(range(1000))


def test_a_busy_case_past_the_limit_is_a_fault() -> None:
    dog = _hold(3 * LIMIT, _busy)
    assert dog.fired is not None
    assert "more than 0.2s of wall-clock time" in dog.fired[0]


def test_the_drivers_full_collections_do_not_count_against_the_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nearly all of the time goes into full collections (the garbage of the
    # cases before, collected while this one runs): not a hang of the case.
    monkeypatch.setattr(collector, "_frozen", True)  # as it was, afterwards
    before = collector.paused_s()
    dog = _hold(3 * LIMIT, _full_collection)
    assert dog.fired is None
    assert collector.paused_s() - before > 2 * LIMIT  # most of the time, counted


def test_the_rest_of_the_case_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "_frozen", True)  # as it was, afterwards

    def half_busy() -> None:  # as long outside the collections as in them
        start = time.perf_counter()
        _full_collection()
        end = 2 * time.perf_counter() - start
        while time.perf_counter() < end:
            _busy()

    dog = _hold(6 * LIMIT, half_busy)  # 3 x LIMIT outside the collections
    assert dog.fired is not None
