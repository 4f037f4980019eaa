"""Instructions per case: the full pipeline against Hypothesis alone, without noise.

On a shared machine a rate in cases per second varies by 10 to 20 % from one
round to the next, CPU time included (other processes share the caches and
the cores' hyperthreads). The number of machine instructions a case executes
does not: this script counts them with valgrind's callgrind, for the same
modes and cases as `throughput.py` (its ``batch``, the same seeds and
settings), as the difference between a run of ``--examples`` cases and a run
of none (imports and warm-up cancel out), divided by ``--examples``.

Instructions are not time (a cache miss costs more than an add), but the
ratio full / Hypothesis-alone in instructions follows the one in CPU time
without its noise. Needs ``valgrind``; about 50 times slower than a plain run
(about a minute per mode and backend for 200 cases).

    python benchmarks/instructions.py [--examples 200] [--modes generate,full]
        [--backends asyncio,trio] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()

#: callgrind's summary line: ``==123== Collected : 931680728``.
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")

Runner = Callable[[list[str], dict[str, str]], str]


def child(mode: str, backend: str, examples: int) -> None:
    """What runs under valgrind: the warm-up `throughput.measure` does, then
    ``examples`` cases of ``mode`` (none: the baseline)."""
    sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]
    # Function-level imports: the parent process needs neither.
    import throughput

    from asgifuzz._driver import determinism
    from asgifuzz._driver.vtime import blocking_threads

    determinism.install()
    warnings.simplefilter("ignore")
    with blocking_threads():
        # The first full run freezes the heap (asgifuzz._driver.collector).
        throughput.batch(throughput.BODIES["full"], backend, 20, 999_999)
        throughput.batch(throughput.BODIES[mode], backend, 20, 999_998)
        if examples:
            throughput.batch(throughput.BODIES[mode], backend, examples, 0)


def _valgrind(argv: list[str], env: dict[str, str]) -> str:
    with tempfile.TemporaryDirectory(prefix="asgifuzz-callgrind-") as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={Path(tmp) / 'out'}",
            *argv,
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        return proc.stderr


def instructions(
    mode: str, backend: str, examples: int, runner: Runner = _valgrind
) -> int:
    """Instructions executed by ``examples`` cases of ``mode`` on ``backend``."""
    # A fixed hash seed: the same dict layouts, so the same counts, every time.
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    counts = []
    for n in (0, examples):
        argv = [sys.executable, str(HERE), "--child", mode, backend, str(n)]
        output = runner(argv, env)
        found = COLLECTED.search(output)
        if found is None:
            raise RuntimeError(f"no instruction count from valgrind:\n{output}")
        counts.append(int(found.group(1)))
    return counts[1] - counts[0]


def measure(
    modes: Sequence[str],
    backends: Sequence[str],
    examples: int,
    runner: Runner = _valgrind,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Instructions per case of each mode on each backend, and full / generate
    (Hypothesis alone's instructions over the full pipeline's: the share of a
    full case that is Hypothesis, as a rate ratio)."""
    per_case: dict[str, dict[str, float]] = {}
    for backend in backends:
        for mode in modes:
            count = instructions(mode, backend, examples, runner) / examples
            per_case.setdefault(mode, {})[backend] = round(count)
            log(f"{backend:7} {mode:10} {count / 1e6:8.3f} M instructions a case")
    ratio = {}
    if "full" in per_case and "generate" in per_case:
        ratio = {
            b: round(per_case["generate"][b] / per_case["full"][b], 3) for b in backends
        }
    return {"examples": examples, "per_case": per_case, "full_over_hypothesis": ratio}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--modes", default="generate,full")
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, backend, n = args.child
        child(mode, backend, int(n))
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    result = measure(args.modes.split(","), args.backends.split(","), args.examples)
    for backend, ratio in result["full_over_hypothesis"].items():
        print(f"{backend}: full / Hypothesis alone, in instructions: {ratio:.1%}")
    if args.json is not None:
        command = "python benchmarks/instructions.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
