"""How often does a case replay to a different transcript? Prints the figures.

Runs N cases from `cases()` twice on each backend, perturbing the heap between
the runs (object addresses decide the iteration order of plain sets), and counts
transcripts that differ. On asyncio the first run gets a fresh event loop and the
second the loop the first one left, when it left it clean (`run_virtual`); the
count of those reused loops is printed too. With ``--no-ordered-sets`` it leaves anyio's sets alone,
to show what the patch is for.

    python benchmarks/determinism.py [N] [--no-ordered-sets]
"""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, Phase, given, settings

from asgifuzz import run
from asgifuzz._driver import determinism as _determinism
from asgifuzz._driver import vtime
from asgifuzz.models import Case
from asgifuzz.strategies import cases


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "300"))
    if "--no-ordered-sets" in sys.argv:
        _determinism.install = lambda: None  # type: ignore[assignment]
    differ = {"asyncio": 0, "trio": 0}
    seen = reused = 0

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def one(case: Case) -> None:
        nonlocal seen, reused
        seen += 1
        for backend in differ:
            vtime.close_spare_loop()
            first = [
                (e.tick, e.where, e.kind, e.message, e.detail)
                for e in run(case, backend).recorder.events
            ]
            junk = [object() for _ in range(seen % 7 * 300)]
            reused += backend == "asyncio" and bool(vtime._spare)
            second = [
                (e.tick, e.where, e.kind, e.message, e.detail)
                for e in run(case, backend).recorder.events
            ]
            del junk
            differ[backend] += first != second

    one()
    for backend, count in differ.items():
        print(f"{backend}: {count} of {seen} cases replayed differently")
    print(f"asyncio: {reused} of {seen} second runs on the first run's loop")


if __name__ == "__main__":
    main()
