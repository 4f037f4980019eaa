"""cases/s of HTTP and websocket cases, side by side in one process: each case
drawn by `cases(scopes=[...])` and judged on both backends (`asgifuzz.check`'s
work), 500 derandomized examples per scope.

Run: python benchmarks/ws_rate.py [examples]
"""

from __future__ import annotations

import sys
import time

from hypothesis import HealthCheck, Phase, given, settings

from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case
from asgifuzz.strategies import cases


def rate(scope: str, examples: int) -> float:
    """Cases per second for ``scope``."""
    count = [0]

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(scopes=[scope]))
    def one(case: Case) -> None:
        judge(case)
        count[0] += 1

    start = time.perf_counter()
    one()
    return count[0] / (time.perf_counter() - start)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    for scope in ("http", "websocket", "http", "websocket"):
        print(f"{scope}: {rate(scope, n):.0f} cases/s ({n} cases, both backends)")
