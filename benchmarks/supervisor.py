"""Throughput with and without the supervisor, side by side in one run.

    python benchmarks/supervisor.py [SECONDS] [ROUNDS]

Runs ``asgifuzz fuzz`` on the built-in models (asyncio, no database, seed 0)
alternately supervised (the default: a worker process, heartbeat and watchdog)
and with ``--no-supervisor`` (this process, the in-process watchdog only), and
prints the cases/s of each and the ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median


def rate(seconds: float, *extra: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.json"
        command = [sys.executable, "-m", "asgifuzz", "fuzz", "--max-time", str(seconds)]
        command += ["--backend", "asyncio", "--no-database", "--progress", "off"]
        subprocess.run([*command, "--json", str(out), *extra], capture_output=True)
        return float(json.loads(out.read_text())["cases_per_s"])


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with_, without = [], []
    for _ in range(rounds):
        with_.append(rate(seconds))
        without.append(rate(seconds, "--no-supervisor"))
    a, b = median(with_), median(without)
    print(f"supervised:      {a:8.1f} cases/s  {with_}")
    print(f"--no-supervisor: {b:8.1f} cases/s  {without}")
    print(f"ratio: {a / b:.3f}")


if __name__ == "__main__":
    main()
