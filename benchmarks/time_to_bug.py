"""Time to bug: how long `asgifuzz fuzz` takes to find each known bug.

For each bug of ``KNOWN_BUGS.md`` (K1 twice: it has two affected ranges), runs

    python -m asgifuzz fuzz --backend both --seed S --max-time 60 --json OUT --no-database

in a virtual environment of an affected release, once per seed, each run pinned
to one core, and reads from OUT when the bug was first seen (``first_seen_s``,
``first_seen_cases`` of the finding with the bug's key). Then the same on the
first fixed release, to see whether it stays clean of that key.

A key is not a bug: other bugs of an old release can break the same invariant
the same way (``I4:response`` is also ``Request.is_disconnected()`` dropping the
body). So a finding with the bug's key counts as the bug only if its shrunk
case does not fail with that key on the fixed release (replayed there with
``asgifuzz replay``): the bug is what the fix removed. A finding with the key
that still fails on the fixed release is another bug, and since `fuzz` reports
one finding per key, it hides the known one for the rest of that run.

The venvs are asgifuzz's own (`asgifuzz._releases.venvs.VenvCache`, the era pins of
``asgifuzz bisect``), cached in ``~/.cache/asgifuzz/venvs`` (``--cache``);
``--venv-root DIR`` uses prebuilt ``DIR/sl-<version>`` venvs where they exist.

    python benchmarks/time_to_bug.py [--bugs K1a,K2] [--seeds 10] [--max-time 60]
        [--fixed-seeds 2] [--jobs 1] [--json PATH] [--markdown PATH]
        [--arms 'on=;off=--points 0']

``--arms`` compares configurations of ``fuzz`` side by side: each arm is a name
and the extra options its runs get (a word ``NAME=VALUE`` in upper case is an
environment variable instead: ``--arms 'swarm=;no-swarm=ASGIFUZZ_SWARM=0'``
measures what swarm generation contributes), and the runs of one seed and bug go one
arm after the other (with ``--jobs 2``, at the same time on the two cores), so
that the machine's load falls on every arm alike. The fuzz runs import
asgifuzz from this checkout (``PYTHONPATH``), whatever the venv installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The sibling module, and asgifuzz from this checkout when it is not installed.
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import _machine  # noqa: E402

from asgifuzz._releases.venvs import VenvCache  # noqa: E402


@dataclass(frozen=True)
class Bug:
    """A known bug: an affected release, its first fixed release, and its keys."""

    name: str
    known: str  # its id in KNOWN_BUGS.md
    affected: str
    fixed: str
    keys: tuple[str, ...] = ()


#: (name, id in KNOWN_BUGS.md, an affected release, the first fixed release).
RELEASES = (
    ("K1a", "K1", "0.20.4", "0.21.0"),
    ("K1b", "K1", "0.38.2", "0.38.3"),
    ("K2", "K2", "0.27.0", "0.28.0"),
    ("K3", "K3", "0.38.4", "0.38.5"),
    ("K4", "K4", "0.45.0", "0.45.1"),
    ("K5", "K5", "1.2.1", "1.3.0"),
)


def corpus_keys(corpus: Path) -> dict[str, tuple[str, ...]]:
    """The failure keys of each known bug, from the corpus entries titled ``Kn...``."""
    keys: dict[str, set[str]] = {}
    for path in sorted(corpus.glob("*.json")):
        data = json.loads(path.read_text())
        match = re.match(r"(K\d+)\b", str(data.get("title", "")))
        if match is not None:
            keys.setdefault(match.group(1), set()).add(str(data["key"]))
    return {k: tuple(sorted(v)) for k, v in keys.items()}


def bugs(corpus: Path, names: Iterable[str] | None = None) -> list[Bug]:
    """The bugs to measure (all by default), with their keys from ``corpus``."""
    keys = corpus_keys(corpus)
    wanted = None if names is None else set(names)
    chosen = [
        Bug(name, known, affected, fixed, keys.get(known, ()))
        for name, known, affected, fixed in RELEASES
        if wanted is None or name in wanted or known in wanted
    ]
    for bug in chosen:
        if not bug.keys:
            raise SystemExit(f"no corpus entry titled '{bug.known}...' in {corpus}")
    return chosen


@dataclass
class Seen:
    """A finding with one of a bug's keys, in one fuzz run."""

    key: str
    seconds: float
    cases: int
    #: On the other release: "fails" (with this key), "other", "passes", "error".
    replay: str | None = None
    message: str = ""


@dataclass
class Run:
    """One fuzz run of one bug on one release with one seed."""

    bug: str
    role: str  # "affected" or "fixed"
    release: str
    seed: int
    wall_s: float = 0.0
    cases: int = 0
    seen: list[Seen] = field(default_factory=list)
    error: str = ""
    #: ``os.getloadavg()`` when the run started (the machine may be shared).
    load: list[float] = field(default_factory=list)
    #: The arm (``--arms``) and what the run counted besides generated cases.
    arm: str = "default"
    point_runs: int = 0
    shrink_runs: int = 0
    #: Generated cases per second of generation, as ``fuzz --json`` says.
    cases_per_s: float = 0.0

    def detection(self) -> Seen | None:
        """The first finding that is this bug (affected runs)."""
        mine = [s for s in self.seen if s.replay in ("passes", "other")]
        return min(mine, key=lambda s: s.seconds) if mine else None


def findings_with(data: dict[str, Any], keys: Sequence[str]) -> list[Seen]:
    """The findings of a ``fuzz --json`` summary whose key is one of ``keys``."""
    return [
        Seen(
            key=f["key"],
            seconds=float(f["first_seen_s"]),
            cases=int(f["first_seen_cases"]),
            message=(f.get("messages") or [""])[0][:300],
        )
        for f in data.get("findings", [])
        if f.get("key") in keys
    ]


class Venvs(VenvCache):
    """asgifuzz's venv cache, preferring prebuilt ``ROOT/sl-<version>`` venvs."""

    def __init__(self, cache: Path | None, prebuilt: Path | None) -> None:
        super().__init__(cache)
        self.prebuilt = prebuilt
        self._lock = threading.Lock()

    def ensure(self, package: str, version: str) -> Path:
        if self.prebuilt is not None:
            venv = self.prebuilt / f"sl-{version}"
            if (venv / "bin" / "python").exists():
                return venv
        with self._lock:  # one build at a time
            return super().ensure(package, version)

    def python(self, version: str) -> Path:
        return self.ensure("starlette", version) / "bin" / "python"

    def run_python(
        self, venv: Path, args: Sequence[str]
    ) -> subprocess.CompletedProcess[str]:
        """As asgifuzz's, but a replay imports this checkout's asgifuzz, as
        the fuzz runs do (a cached venv's own may be gone or another)."""
        if list(args[:3]) != ["-m", "asgifuzz", "replay"]:
            return super().run_python(venv, args)
        return subprocess.run(
            [str(venv / "bin" / "python"), *args],
            cwd=venv,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )


def _clean_env(assignments: Sequence[str] = ()) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CI"):
        env.pop(name, None)
    # This checkout's asgifuzz, not the one the venv was built with.
    env["PYTHONPATH"] = str(ROOT)
    env.update(a.split("=", 1) for a in assignments)
    return env


def _is_assignment(word: str) -> bool:
    """``ASGIFUZZ_SWARM=0``: an environment variable of the arm, not an option."""
    name, sep, _ = word.partition("=")
    return bool(sep) and name.isidentifier() and name.isupper()


def parse_arms(text: str | None) -> dict[str, list[str]]:
    """``on=;off=--points 0`` -> ``{"on": [], "off": ["--points", "0"]}``."""
    if not text:
        return {"default": []}
    arms = {}
    for part in text.split(";"):
        name, sep, flags = part.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--arms: {part!r} is not NAME=OPTIONS")
        arms[name.strip()] = flags.split()
    return arms


def fuzz_once(
    python: Path,
    seed: int,
    max_time: float,
    core: int | None,
    extra: Sequence[str] = (),
    keys: Sequence[str] = (),
) -> tuple[dict[str, Any], float]:
    """Run ``asgifuzz fuzz`` once; the JSON summary and the wall time it took.

    Only the findings with ``keys`` are shrunk after the budget
    (``ASGIFUZZ_SHRINK_ONLY``): the search this measures is over by then, and
    the others' shrinking would only make the run longer."""

    def pin() -> None:  # pragma: no cover - runs in the child
        if core is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {core})

    with tempfile.TemporaryDirectory(prefix="asgifuzz-ttb-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [
            str(python), "-m", "asgifuzz", "fuzz", "--backend", "both",
            "--seed", str(seed), "--max-time", f"{max_time:g}",
            "--json", str(out), "--no-database",
            *(w for w in extra if not _is_assignment(w)),
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=tmp,
            env=_clean_env(
                [f"ASGIFUZZ_SHRINK_ONLY={','.join(keys)}"]
                + [w for w in extra if _is_assignment(w)]
            ),
            capture_output=True,
            text=True,
            timeout=max_time * 5 + 300,
            preexec_fn=pin,
            check=False,
        )
        wall = time.perf_counter() - started
        if proc.returncode not in (0, 1) or not out.exists():
            tail = " | ".join((proc.stderr or proc.stdout).splitlines()[-3:])
            raise RuntimeError(f"fuzz exited {proc.returncode}: {tail}")
        return json.loads(out.read_text()), wall


def _replay(venvs: Venvs, finding: dict[str, Any], version: str) -> str:
    with tempfile.TemporaryDirectory(prefix="asgifuzz-ttb-") as tmp:
        path = Path(tmp) / "finding.json"
        path.write_text(json.dumps({"key": finding["key"], "case": finding["case"]}))
        try:
            outcome, _ = venvs.replay(path, "starlette", version, "both")
        except Exception as exc:  # a replay without a verdict is recorded, not fatal
            return f"error: {exc}"[:200]
        return outcome


def measure(
    bug: Bug,
    role: str,
    seed: int,
    venvs: Venvs,
    max_time: float,
    core: int | None,
    arm: tuple[str, Sequence[str]] = ("default", ()),
) -> Run:
    """One fuzz run, with each finding of the bug's keys replayed on the other release."""
    release, other = (
        (bug.affected, bug.fixed) if role == "affected" else (bug.fixed, bug.affected)
    )
    run = Run(bug.name, role, release, seed, load=list(os.getloadavg()), arm=arm[0])
    try:
        data, run.wall_s = fuzz_once(
            venvs.python(release), seed, max_time, core, arm[1], bug.keys
        )
    except Exception as exc:
        run.error = str(exc)[:300]
        return run
    run.cases = int(data.get("cases", 0))
    run.point_runs = int(data.get("point_runs", 0))
    run.shrink_runs = int(data.get("shrink_runs", 0))
    run.cases_per_s = float(data.get("cases_per_s", 0.0))
    run.seen = findings_with(data, bug.keys)
    # One key may have several findings (several bugs): each is replayed.
    raw = [f for f in data.get("findings", []) if f.get("key") in bug.keys]
    for seen, finding in zip(run.seen, raw, strict=True):
        seen.replay = _replay(venvs, finding, other)
    return run


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.inf


def summarize(
    runs: Sequence[Run], bug_list: Sequence[Bug], budget: float
) -> list[dict[str, Any]]:
    """One row per bug (and arm): detection rate within ``budget``, median and
    worst time and generated cases to the bug (an undetected run counts as
    infinitely slow), and how often the fixed release showed the key."""
    rows = []
    arms = list(dict.fromkeys(r.arm for r in runs)) or ["default"]
    for bug, arm in ((b, a) for b in bug_list for a in arms):
        mine = [r for r in runs if r.bug == bug.name and r.arm == arm]
        hit = [r for r in mine if r.role == "affected"]
        fixed = [r for r in mine if r.role == "fixed"]
        times, cases, masked = [], [], 0
        for r in hit:
            d = r.detection()
            ok = d is not None and d.seconds <= budget
            times.append(d.seconds if ok and d is not None else math.inf)
            cases.append(float(d.cases) if ok and d is not None else math.inf)
            masked += d is None and any(s.replay == "fails" for s in r.seen)
        rows.append(
            {
                "bug": bug.name,
                "arm": arm,
                "keys": list(bug.keys),
                "affected": bug.affected,
                "fixed": bug.fixed,
                "runs": len(hit),
                "errors": sum(bool(r.error) for r in [*hit, *fixed]),
                "detected": sum(t != math.inf for t in times),
                "median_s": _median(times),
                "worst_s": max(times, default=math.inf),
                "median_cases": _median(cases),
                "worst_cases": max(cases, default=math.inf),
                "masked": masked,
                # how fast the fuzzer went meanwhile: generated cases (each on
                # both backends) per second of generation, and the other runs
                "cases_per_s": round(_median([r.cases_per_s for r in hit]), 1),
                "cases_median": _median([float(r.cases) for r in hit]),
                "point_runs_median": _median([float(r.point_runs) for r in hit]),
                "shrink_runs_median": _median([float(r.shrink_runs) for r in hit]),
                "load_1min": _median([r.load[0] for r in hit if r.load]),
                "fixed_runs": len(fixed),
                "fixed_key_seen": sum(bool(r.seen) for r in fixed),
                # the key on the fixed release, from a case that fails on the
                # affected release too: a bug both releases have, not this one
                "fixed_key_also_affected": sum(
                    bool(r.seen) and all(s.replay == "fails" for s in r.seen)
                    for r in fixed
                ),
            }
        )
    return rows


def _fmt(x: float, unit: str = "") -> str:
    if x == math.inf:
        return "not found"
    return f"{x:.1f}{unit}" if unit else f"{x:.0f}"


def markdown_table(rows: Sequence[dict[str, Any]], budget: float) -> str:
    """The summary as a Markdown table."""
    lines = [
        f"| bug | arm | key | affected | detected within {budget:g} s | median "
        "| worst | median generated cases | worst | fixed release: runs with the key "
        "| generated cases/s, load | per run: cases, point runs, shrink runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fixed = f"{r['fixed']}: {r['fixed_key_seen']}/{r['fixed_runs']}"
        if r["fixed_key_seen"]:
            fixed += f" ({r['fixed_key_also_affected']} also fail on {r['affected']})"
        detected = f"{r['detected']}/{r['runs']}"
        if r["masked"]:
            detected += f" ({r['masked']} masked)"
        lines.append(
            f"| {r['bug']} | {r.get('arm', 'default')} | `{', '.join(r['keys'])}` "
            f"| {r['affected']} | {detected} "
            f"| {_fmt(r['median_s'], ' s')} | {_fmt(r['worst_s'], ' s')} "
            f"| {_fmt(r['median_cases'])} | {_fmt(r['worst_cases'])} | {fixed} "
            f"| {r['cases_per_s']:.0f}, {_load(r['load_1min'])} "
            f"| {_fmt(r.get('cases_median', math.inf))}, "
            f"{_fmt(r.get('point_runs_median', math.inf))}, "
            f"{_fmt(r.get('shrink_runs_median', math.inf))} |"
        )
    return "\n".join(lines)


def _releases(found: dict[str, dict[str, str | None]]) -> str:
    if not found:
        return ""
    parts = [
        f"{v} ({', '.join(f'{k} {x}' for k, x in vs.items() if x and k != 'starlette')})"
        for v, vs in found.items()
    ]
    return "Release venvs (Starlette with its era's pins): " + "; ".join(parts) + "."


def _load(x: float) -> str:
    return "?" if x == math.inf else f"{x:.1f}"


def load_runs(data: dict[str, Any]) -> tuple[list[Run], list[Bug]]:
    """The runs and bugs of a saved ``--json`` result (to summarize it again)."""
    runs = []
    for r in data["runs"]:
        seen = [Seen(**s) for s in r.pop("seen")]
        runs.append(Run(**r, seen=seen))
    bugs_by_name = {
        row["bug"]: Bug(
            row["bug"],
            row["bug"][:2],
            row["affected"],
            row["fixed"],
            tuple(row["keys"]),
        )
        for row in data["summary"]
    }
    return runs, list(bugs_by_name.values())


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and math.isinf(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def _git() -> dict[str, str]:
    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "asgifuzz_dirty": "yes" if git("status", "--porcelain", "asgifuzz") else "no",
    }


def report(
    runs: Sequence[Run],
    bug_list: Sequence[Bug],
    args: argparse.Namespace,
    machine: dict[str, Any],
    command: str,
) -> tuple[dict[str, Any], str]:
    """The results as JSON-ready data and as Markdown."""
    rows = summarize(runs, bug_list, args.max_time)
    data = {
        "command": command,
        "machine": machine,
        "source": _git(),
        "budget_s": args.max_time,
        "seeds": args.seeds,
        "fixed_seeds": args.fixed_seeds,
        "jobs": args.jobs,
        "summary": rows,
        "runs": [asdict(r) for r in runs],
    }
    text = "\n\n".join(
        [
            "# Time to bug",
            f"`{command}`",
            markdown_table(rows, args.max_time),
            "Times are wall seconds from the start of `asgifuzz fuzz --backend both` "
            "(each case on asyncio and trio; failures are shrunk after the budget, so "
            "no shrinking comes before) to the first case showing the bug; an "
            "undetected run counts as "
            "infinitely slow; cases are generated cases (runs at disconnect points and "
            "of shrinking apart). A finding counts as the bug when its shrunk case does not "
            "fail with the key on the fixed release; 'masked': another bug with the "
            "same key was found first, and `fuzz` reports one finding per key.",
            _machine.markdown(machine),
            _releases(machine.get("release_versions", {})),
        ]
    )
    return _jsonable(data), text + "\n"


def run_all(
    plan: Sequence[tuple[Bug, str, int, str]],
    jobs: int,
    one: Callable[[Bug, str, int, int | None, str], Run],
    done: Callable[[list[Run]], None],
) -> list[Run]:
    """Run the plan on ``jobs`` cores (each run pinned to a free one), in order."""
    cores: queue.Queue[int | None] = queue.Queue()
    for i in range(jobs):
        cores.put(i % (os.cpu_count() or 1) if jobs > 1 else None)
    runs: list[Run] = []
    lock = threading.Lock()

    def task(bug: Bug, role: str, seed: int, arm: str) -> None:
        core = cores.get()
        try:
            run = one(bug, role, seed, core, arm)
        finally:
            cores.put(core)
        with lock:
            runs.append(run)
            d = run.detection() if role == "affected" else None
            what = (
                run.error
                or (f"found at {d.seconds:.1f}s / {d.cases} cases" if d else "")
                or (
                    f"key seen: {[(s.key, s.replay) for s in run.seen]}"
                    if run.seen
                    else "clean"
                )
            )
            print(
                f"[{len(runs)}/{len(plan)}] {bug.name} {arm} {role} {run.release} "
                f"seed {seed}: {what} ({run.cases} generated cases, "
                f"{run.point_runs} point runs, {run.wall_s:.0f}s)",
                flush=True,
            )
            done(list(runs))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(task, *p) for p in plan]:
            f.result()
    return runs


def _write(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    for path, content in (
        (args.json, json.dumps(data, indent=1) + "\n"),
        (args.markdown, text),
    ):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(content)
            tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bugs", help="comma-separated, e.g. K1a,K2 (default: all)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument(
        "--fixed-seeds", type=int, default=2, help="runs per fixed release"
    )
    parser.add_argument("--max-time", type=float, default=60.0, help="fuzz budget, s")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at once, one core each"
    )
    parser.add_argument(
        "--venv-root", type=Path, help="prebuilt DIR/sl-<version> venvs"
    )
    parser.add_argument("--cache", type=Path, help="asgifuzz's venv cache folder")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument(
        "--arms",
        help="configurations side by side: NAME=FUZZ OPTIONS;NAME=... "
        "(e.g. 'on=;off=--points 0'); default: one arm, fuzz's defaults",
    )
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--markdown", type=Path, metavar="PATH")
    parser.add_argument(
        "--resummarize",
        type=Path,
        metavar="JSON",
        help="summarize the runs saved in a --json result again, run nothing",
    )
    args = parser.parse_args(argv)
    machine = _machine.describe()
    command = "python benchmarks/time_to_bug.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    if args.resummarize is not None:
        saved = json.loads(args.resummarize.read_text())
        runs, bug_list = load_runs(saved)
        for name in ("max_time", "seeds", "fixed_seeds", "jobs"):
            setattr(args, name, saved["budget_s" if name == "max_time" else name])
        _write(args, *report(runs, bug_list, args, saved["machine"], saved["command"]))
        print(report(runs, bug_list, args, saved["machine"], saved["command"])[1])
        return 0
    bug_list = bugs(args.corpus, args.bugs.split(",") if args.bugs else None)
    venvs = Venvs(args.cache, args.venv_root)
    for bug in bug_list:  # build (or find) every venv first, one at a time
        for version in (bug.affected, bug.fixed):
            venvs.python(version)
    machine["release_versions"] = {
        v: _machine.venv_versions(venvs.python(v))
        for v in sorted({x for b in bug_list for x in (b.affected, b.fixed)})
    }
    arms = parse_arms(args.arms)
    plan = [
        (b, "affected", s, a) for s in range(args.seeds) for b in bug_list for a in arms
    ]
    plan += [
        (b, "fixed", s, a)
        for s in range(args.fixed_seeds)
        for b in bug_list
        for a in arms
    ]

    def save(runs: list[Run]) -> None:
        _write(args, *report(runs, bug_list, args, machine, command))

    runs = run_all(
        plan,
        args.jobs,
        lambda b, role, s, core, a: measure(
            b, role, s, venvs, args.max_time, core, (a, arms[a])
        ),
        save,
    )
    _, text = report(runs, bug_list, args, machine, command)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
