"""Revisions side by side: the throughput of two git revisions, measured in one run.

Each revision is checked out into a temporary git worktree and runs its own
``benchmarks/throughput.py`` (so a revision with another package layout measures
itself), in alternation: A, B, A, B, ... for ``--rounds`` rounds, each round the
same cases (throughput draws them from fixed seeds). Alternating spreads the
load of a shared machine over both revisions; the medians and the ratio B/A are
printed per mode and backend, in wall-clock and in CPU-time rates.

    python benchmarks/revisions.py REV_A REV_B [--rounds 5] [--examples 300]
        [--modes full,generate] [--backends asyncio,trio] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _machine

ROOT = Path(__file__).resolve().parent.parent


def checkout(rev: str, where: Path) -> Path:
    """A worktree of ``rev`` under ``where`` (detached; removed by `remove`)."""
    path = where / rev.replace("/", "_")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(path), rev],
        check=True,
    )
    return path


def remove(path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
        check=False,
    )


def one_round(
    tree: Path, modes: str, backends: str, examples: int, out: Path
) -> dict[str, Any]:
    """One repeat of the revision's throughput script, from its own tree."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [
        sys.executable,
        str(tree / "benchmarks" / "throughput.py"),
        "--modes",
        modes,
        "--backends",
        backends,
        "--examples",
        str(examples),
        "--repeat",
        "1",
        "--json",
        str(out),
    ]
    subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def compare(
    revs: Sequence[str],
    *,
    rounds: int,
    examples: int,
    modes: str,
    backends: str,
) -> dict[str, Any]:
    """Medians per revision, mode and backend, and the ratio of the second to the first."""
    rates: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    with tempfile.TemporaryDirectory(prefix="asgifuzz-revisions-") as tmp:
        trees = [checkout(rev, Path(tmp)) for rev in revs]
        try:
            for n in range(rounds):
                for rev, tree in zip(revs, trees, strict=True):
                    data = one_round(
                        tree, modes, backends, examples, Path(tmp) / f"{n}.json"
                    )
                    for mode, per_backend in data["modes"].items():
                        for backend, cell in per_backend.items():
                            slot = rates.setdefault(rev, {}).setdefault(mode, {})
                            slot = slot.setdefault(backend, {"rate": [], "cpu": []})
                            slot["rate"].append(cell["median_rate"])
                            slot["cpu"].append(cell["median_cpu_rate"])
        finally:
            for tree in trees:
                remove(tree)
    a, b = revs
    table = {}
    for mode, per_backend in rates[a].items():
        for backend, cell in per_backend.items():
            other = rates[b][mode][backend]
            row = {
                "a": statistics.median(cell["rate"]),
                "b": statistics.median(other["rate"]),
                "a_cpu": statistics.median(cell["cpu"]),
                "b_cpu": statistics.median(other["cpu"]),
            }
            row["b_over_a"] = round(row["b"] / row["a"], 3)
            row["b_over_a_cpu"] = round(row["b_cpu"] / row["a_cpu"], 3)
            table[f"{mode}/{backend}"] = row
    return {
        "revisions": list(revs),
        "rounds": rounds,
        "rates": rates,
        "table": table,
        "full_over_hypothesis": {rev: _over_generate(rates[rev]) for rev in revs},
    }


def _over_generate(
    rates: dict[str, dict[str, dict[str, list[float]]]],
) -> dict[str, dict[str, float]]:
    """Per backend, the median over the rounds of full / generate (Hypothesis
    alone), each round's pair measured together; wall and CPU rates."""
    if "full" not in rates or "generate" not in rates:
        return {}
    return {
        backend: {
            key: round(
                statistics.median(
                    f / g
                    for f, g in zip(
                        cell[key], rates["generate"][backend][key], strict=True
                    )
                ),
                3,
            )
            for key in ("rate", "cpu")
        }
        for backend, cell in rates["full"].items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs=2, metavar="REV", help="two git revisions")
    parser.add_argument("--rounds", type=int, default=5, help="alternations (median)")
    parser.add_argument("--examples", type=int, default=300, help="cases per round")
    parser.add_argument("--modes", default="full,generate")
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    machine = _machine.describe(os.getloadavg())
    result = compare(
        args.revs,
        rounds=args.rounds,
        examples=args.examples,
        modes=args.modes,
        backends=args.backends,
    )
    a, b = args.revs
    print(f"| mode/backend | {a}: cases/s (per CPU-s) | {b} | {b}/{a} (CPU) |")
    print("|---|---:|---:|---:|")
    for key, row in result["table"].items():
        print(
            f"| {key} | {row['a']:.0f} ({row['a_cpu']:.0f}) | "
            f"{row['b']:.0f} ({row['b_cpu']:.0f}) | "
            f"{row['b_over_a']:.0%} ({row['b_over_a_cpu']:.0%}) |"
        )
    for rev, ratios in result["full_over_hypothesis"].items():
        for backend, ratio in ratios.items():
            print(
                f"{rev} {backend}: full / Hypothesis alone {ratio['rate']:.0%} "
                f"({ratio['cpu']:.0%} per CPU-s)"
            )
    if args.json is not None:
        command = "python benchmarks/revisions.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        data = {"command": command, "machine": machine, **result}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
