"""Throughput with and without the supervisor, side by side in one run.

    python benchmarks/supervisor.py [SECONDS] [ROUNDS] [CASES]

Runs ``asgifuzz fuzz`` on the built-in models (asyncio, no database, seed 0)
supervised (the default: a worker process, heartbeat and watchdog) and with
``--no-supervisor`` (the cases in the command's process, the in-process
watchdog only), both at once in each round (so that both see the same load on
a shared machine), and prints the cases/s of each, the median ratio of the
rounds and the ratio of the medians. It also measures, in this process, the
one thing the supervisor adds to each case, the heartbeat (the case pickled
into shared memory, the start time written): ``CASES`` cases drawn once, each
judged under the plain watchdog and under the heartbeat in turn (the order
alternating), and prints the time per case of each and the difference (which
the load blurs too), and the heartbeat's own work alone on those cases
(`Heartbeat.started`), against the watchdog's time per case.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # asgifuzz from this checkout when it is not installed

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from asgifuzz._campaign.task import Task  # noqa: E402
from asgifuzz._campaign.watchdog import Watchdog  # noqa: E402
from asgifuzz._campaign.worker import CASE_BYTES, Heartbeat  # noqa: E402
from asgifuzz.models import Case  # noqa: E402
from asgifuzz.strategies import cases as all_cases  # noqa: E402


def rates(seconds: float, *modes: tuple[str, ...]) -> list[float]:
    """The cases/s of one ``asgifuzz fuzz`` run per mode (extra options), all
    run at once."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for n, extra in enumerate(modes):
            out = Path(tmp) / f"{n}.json"
            command = [sys.executable, "-m", "asgifuzz", "fuzz"]
            command += ["--max-time", str(seconds), "--backend", "asyncio"]
            command += ["--no-database", "--progress", "off", "--json", str(out)]
            quiet = subprocess.DEVNULL
            proc = subprocess.Popen([*command, *extra], stdout=quiet, stderr=quiet)
            runs.append((proc, out))
        for proc, _ in runs:
            proc.communicate()
        return [float(json.loads(out.read_text())["cases_per_s"]) for _, out in runs]


def draw(n: int) -> list[Case]:
    """``n`` cases of the built-in models (seed 0)."""
    drawn: list[Case] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(0)
    @given(case=all_cases())
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn[:n]


def per_case(n: int, backend: str = "asyncio") -> tuple[float, float, float]:
    """Seconds per case under the plain watchdog, under the heartbeat, and of
    the heartbeat's own work alone."""
    context = multiprocessing.get_context("spawn")
    plain = Watchdog()
    beat = Heartbeat(
        Task(max_time=1.0, backends=(backend,), seed=0),
        context.RawArray("d", 1),
        context.RawArray("c", CASE_BYTES),
    )
    spent = {id(plain): 0.0, id(beat): 0.0}
    cases = draw(n)
    for case in cases[:10]:  # the first cases import what the others use
        plain.judge(case, (backend,))
    for i, case in enumerate(cases):
        for dog in (plain, beat) if i % 2 else (beat, plain):
            start = time.perf_counter()
            dog.judge(case, (backend,))
            spent[id(dog)] += time.perf_counter() - start
    start = time.perf_counter()
    for case in cases:
        beat.started(case)
    work = (time.perf_counter() - start) / len(cases)
    return spent[id(plain)] / len(cases), spent[id(beat)] / len(cases), work


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    with_, without = [], []
    for _ in range(rounds):
        a, b = rates(seconds, (), ("--no-supervisor",))
        with_.append(a)
        without.append(b)
    a, b = median(with_), median(without)
    print(f"supervised:      {a:8.1f} cases/s  {with_}")
    print(f"--no-supervisor: {b:8.1f} cases/s  {without}")
    each = median(x / y for x, y in zip(with_, without, strict=True))
    print(f"ratio: {each:.3f} (median of the rounds), {a / b:.3f} (of the medians)")
    plain, beat, work = per_case(n)
    print(
        f"per case ({n} cases, this process): watchdog {plain * 1e3:.3f} ms, "
        f"heartbeat {beat * 1e3:.3f} ms, difference {(beat - plain) * 1e6:+.1f} us "
        f"({(beat - plain) / plain:+.2%}); the heartbeat's own work "
        f"{work * 1e6:.1f} us ({work / plain:.2%} of a case)"
    )


if __name__ == "__main__":
    main()
