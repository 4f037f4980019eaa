"""Disconnect points, paired: the same drawn cases with and without them.

For each seed, draws cases from `asgifuzz.strategies.cases()` in Hypothesis's
generate phase (no shrinking, no database) and judges each on both backends
until one shows a bug's key with its message (``--key``, ``--message``); the
"points" arm also runs each drawn case whose client never hangs up at its
disconnect points (`asgifuzz._campaign.points`), as the fuzz loop does. Both
arms see the same drawn cases in the same order (the points draw nothing), so
the points can only find a bug at the same case or earlier; what they cost is
the extra runs, and the figure is the time to the bug (drawing, running and
judging), and the cases to it. The arms alternate, seed by seed.

Run it with the Python of a venv of an affected release, this checkout first
on the path:

    PYTHONPATH=. /path/to/venv/bin/python benchmarks/points.py --seeds 10 \\
        --key I1:RuntimeError --message "No response returned"
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import _machine  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings, target  # noqa: E402

from asgifuzz._campaign.novelty import Novelty  # noqa: E402
from asgifuzz._campaign.points import variants  # noqa: E402
from asgifuzz._oracles.verdict import Verdict, judge  # noqa: E402
from asgifuzz.models import Case  # noqa: E402
from asgifuzz.strategies import cases  # noqa: E402

BACKENDS = ("asyncio", "trio")


class _Found(BaseException):
    """The bug showed: stop drawing (a BaseException: Hypothesis lets it by)."""


def shows(verdict: Verdict, key: str, message: str) -> bool:
    """Whether ``verdict`` has a violation with ``key`` whose message says ``message``."""
    return any(
        v.key == key and message in v.message
        for vs in verdict.violations.values()
        for v in vs
    )


def one(
    seed_: int,
    points: int,
    key: str,
    message: str,
    max_cases: int,
    guided: bool = False,
) -> dict[str, Any]:
    """Draw until the bug shows (or ``max_cases``): cases, runs, seconds.
    ``guided``: with Hypothesis's target phase fed the novelty of each case."""
    state = {"cases": 0, "runs": 0, "by_point": False}
    started = time.perf_counter()
    novelty = Novelty() if guided else None

    @settings(
        max_examples=max_cases,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.target] if guided else [Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_)
    @given(case=cases())
    def draw(case: Case) -> None:
        state["cases"] += 1
        state["runs"] += 1
        verdict = judge(case, BACKENDS)
        if novelty is not None:
            target(novelty.score(verdict.outcomes.values()), label="novelty")
        if shows(verdict, key, message):
            raise _Found
        for variant in variants(case, verdict.outcomes[BACKENDS[0]], points):
            state["runs"] += 1
            if shows(judge(variant, BACKENDS), key, message):
                state["by_point"] = True
                raise _Found

    found = False
    try:
        draw()
    except _Found:
        found = True
    return {
        "seed": seed_,
        "guided": guided,
        "points": points,
        "found": found,
        "cases": state["cases"],
        "runs": state["runs"],
        "by_point": state["by_point"],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.inf


def _finite(x: float) -> float | None:
    return None if math.isinf(x) else round(x, 3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--key", required=True)
    parser.add_argument("--message", default="")
    parser.add_argument("--max-cases", type=int, default=1000)
    parser.add_argument("--points", type=int, default=16, help="the points arm's N")
    parser.add_argument(
        "--guidance",
        action="store_true",
        help="compare guidance on and off instead (no points in either arm; "
        "not paired: the target phase draws other cases)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    arms = (
        [(f"points={args.points}", args.points, False), ("points=0", 0, False)]
        if not args.guidance
        else [("guided", 0, True), ("unguided", 0, False)]
    )
    # Warm up (imports, Hypothesis's caches): else the first arm pays for it.
    one(10_000, args.points, "I0:warm-up", "", 5, args.guidance)
    runs = []
    for s in range(args.seeds):
        for name, n, guided in arms:  # alternate the arms
            r = one(s, n, args.key, args.message, args.max_cases, guided)
            r["arm"] = name
            print(json.dumps(r), flush=True)
            runs.append(r)
    summary = {}
    for name, _, _ in arms:
        mine = [r for r in runs if r["arm"] == name]
        # an undetected run counts as infinitely slow (JSON: null)
        cases = [r["cases"] if r["found"] else math.inf for r in mine]
        seconds = [r["seconds"] if r["found"] else math.inf for r in mine]
        summary[name] = {
            "found": f"{sum(r['found'] for r in mine)}/{len(mine)}",
            "median_cases": _finite(_median(cases)),
            "median_s": _finite(_median(seconds)),
            "worst_s": _finite(max(seconds, default=math.inf)),
            "by_point": sum(r["by_point"] for r in mine),
            "runs_per_case": round(
                sum(r["runs"] for r in mine) / max(1, sum(r["cases"] for r in mine)),
                2,
            ),
        }
    print(json.dumps(summary, indent=1))
    if args.json is not None:
        data = {
            "command": "python benchmarks/points.py " + " ".join(sys.argv[1:]),
            "machine": _machine.describe(),
            "summary": summary,
            "runs": runs,
        }
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
