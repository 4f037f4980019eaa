"""Memory: the resident size of an `asgifuzz fuzz` run over time. Prints the figures.

Runs ``python -m asgifuzz fuzz --no-database --progress off`` (``--max-time``,
``--workers``, ``--backend`` and ``--seed`` passed through) as a subprocess and
samples the RSS of its process tree (the run and its workers, read from
``/proc``) every ``--every`` seconds. Prints the RSS at fixed fractions of the
budget, at 1, 10 and 30 minutes when the run lasts that long, the peak, and the
ratio of the last sample to the one at 1 minute (issue 11: it should stay under
1.5; before the fix a run grew by 10 to 18 MB/s).

    python benchmarks/memory.py --max-time 600 --json benchmarks/results/memory.json

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The sibling module, and asgifuzz from this checkout when it is not installed.
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import _machine  # noqa: E402

#: Fractions of the budget at which the RSS is printed.
FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
#: Marks (seconds) printed when the run lasts that long.
MARKS = (60.0, 600.0, 1800.0)


def rss_mb(pid: int) -> float:
    """The resident size (MB) of ``pid`` and all its descendants; 0 once gone."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total_kb, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def sample(command: Sequence[str], every: float) -> list[tuple[float, float]]:
    """Run ``command``; return ``(seconds, RSS MB)`` every ``every`` seconds."""
    # asgifuzz from this checkout, as the sibling scripts import it.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        while proc.poll() is None:
            time.sleep(every)
            mb = rss_mb(proc.pid)
            if proc.poll() is None and mb:
                samples.append((time.monotonic() - start, mb))
    return samples


def at(samples: Sequence[tuple[float, float]], seconds: float) -> float | None:
    """The RSS of the first sample at or after ``seconds`` (None: none that late)."""
    return next((mb for t, mb in samples if t >= seconds), None)


def summarise(
    samples: Sequence[tuple[float, float]], max_time: float
) -> dict[str, Any]:
    """RSS at the fractions and marks, the peak, and last / 1 minute."""
    fractions = {f"{f:g}": at(samples, f * max_time) for f in FRACTIONS}
    if samples:
        fractions["1"] = samples[-1][1]
    marks = {f"{m / 60:g}min": at(samples, m) for m in MARKS if m <= max_time}
    one_minute = marks.get("1min")
    last = samples[-1][1] if samples else None
    return {
        "fractions": fractions,
        "marks": marks,
        "peak_mb": max((mb for _, mb in samples), default=None),
        "last_over_1min": round(last / one_minute, 3)
        if last is not None and one_minute
        else None,
    }


def table(summary: dict[str, Any], max_time: float) -> str:
    """The figures as a Markdown table."""

    def mb(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1f}"

    rows = ["| when | RSS (MB) |", "|---|---:|"]
    for key, value in summary["fractions"].items():
        rows.append(
            f"| {float(key) * max_time:.0f} s ({float(key):.0%}) | {mb(value)} |"
        )
    for key, value in summary["marks"].items():
        rows.append(f"| {key} | {mb(value)} |")
    rows.append(f"| peak | {mb(summary['peak_mb'])} |")
    ratio = summary["last_over_1min"]
    rows.append(f"| last / 1 min | {'n/a' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-time", type=float, default=120.0, metavar="S")
    parser.add_argument("--workers", type=int, default=1, metavar="N")
    parser.add_argument(
        "--backend", default="both", choices=("asyncio", "both", "trio")
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    parser.add_argument(
        "--every", type=float, default=2.0, metavar="S", help="seconds between samples"
    )
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "asgifuzz", "fuzz", "--no-database"]
    command += ["--progress", "off", "--max-time", f"{args.max_time:g}"]
    command += ["--backend", args.backend, "--seed", str(args.seed)]
    if args.workers > 1:
        command += ["--workers", str(args.workers)]
    machine = _machine.describe(os.getloadavg())
    samples = sample(command, args.every)
    machine["loadavg_end"] = list(os.getloadavg())
    summary = summarise(samples, args.max_time)
    print(table(summary, args.max_time))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "command": "python benchmarks/memory.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "fuzz": command[1:],
            "machine": machine,
            **summary,
            "samples": [[round(t, 1), round(mb, 1)] for t, mb in samples],
        }
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
