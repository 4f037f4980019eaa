"""``asgifuzz bisect``: which released versions of a package does a case fail on?

Each probed release gets its own virtual environment (cached, see `VenvCache`)
with the package's era-appropriate anyio and trio (`era_pins`), and the case is
replayed there by ``python -m asgifuzz replay``. `bisect` samples the range
coarsely, then binary-searches every boundary between samples whose outcomes
differ, so a bug that was fixed and came back shows as several failing ranges.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from asgifuzz._corpus.entries import parse_version
from asgifuzz._corpus.replay import load_target
from asgifuzz._errors import UsageError
from asgifuzz._releases.venvs import (
    ReplayError,
    ReplayStatus,
    VenvCache,
    era_pins,
    releases,
    to_stderr,
)
from asgifuzz._types import BACKEND_CHOICES

# On a release, the case fails (a corpus entry: with its own key), fails with other
# keys only ("other": the bisected bug is absent), passes, or gives no verdict.
Runner = Callable[[str], tuple[ReplayStatus, str]]  # release -> outcome, detail
BACKENDS = tuple(BACKEND_CHOICES)  # the names --backend accepts
MIN_RELEASE = {"starlette": (0, 15, 0)}  # the first Starlette on anyio
SAMPLES = 12  # coarse probes, both ends included: a run of `step` releases is hit
_WORDS = {"other": "fails differently"}


class Step(NamedTuple):
    """One replay: the release, its outcome, and why it is ``error``."""

    version: str
    outcome: ReplayStatus
    detail: str = ""


class FailingRange(NamedTuple):
    """Consecutive failing releases, and the first passing one after them."""

    first_failing: str
    last_failing: str
    first_fixed: str | None


@dataclass(frozen=True)
class BisectResult:
    """What `bisect` found: every probe (in the order run) and the failing ranges."""

    path: Path
    package: str
    backend: str
    versions: tuple[str, ...]
    step: int
    probes: tuple[Step, ...]
    ranges: tuple[FailingRange, ...]

    def to_data(self) -> dict[str, Any]:
        """The result as JSON-serialisable data (probes in the order run)."""
        return {
            "path": str(self.path),
            "package": self.package,
            "backend": self.backend,
            "releases": list(self.versions),
            "step": self.step,
            "probes": [p._asdict() for p in self.probes],
            "ranges": [r._asdict() for r in self.ranges],
        }


def _index(versions: list[str], version: str, package: str, option: str) -> int:
    for i, v in enumerate(versions):
        if version in (v, v.split(".post")[0]):
            return i
    raise UsageError(
        f"{option} {version}: {package} has no such release (final releases run "
        f"from {versions[0]} to {versions[-1]}); pick one of them"
    )


def bisect(
    path: Path | str,
    *,
    package: str = "starlette",
    lo: str | None = None,
    hi: str | None = None,
    backend: str = "both",
    runner: Runner | None = None,
    cache: Path | str | None = None,
    list_releases: Callable[[str], list[str]] | None = None,
    log: Callable[[str], None] | None = None,
) -> BisectResult:
    """Find the ranges of releases of ``package`` on which the case fails.

    Probes about `SAMPLES` releases evenly spread over ``lo``..``hi`` (both ends
    included), then binary-searches between every two neighbouring probes whose
    outcomes differ. A failing (or passing) range narrower than the sampling
    step can fall between two probes and be missed, and an odd number of
    transitions between two probes shows as one. A release whose replay ends
    without a verdict is recorded as ``error`` and skipped by the search; one
    where a corpus entry fails with other keys only (``other``) counts as not
    failing, since the bug being bisected is not there.

    Args:
        path: a corpus entry or a case JSON file.
        package: the package whose releases are bisected.
        lo, hi: the first and last release to consider; default the oldest
            supported (0.15.0 for Starlette) and the newest.
        backend: ``asyncio``, ``trio`` or ``both`` (fails if either fails).
        runner: replays the case on a release (default: in a `VenvCache`).
        cache: the venv folder of the default runner.
        list_releases: the package's releases, oldest first (default `releases`).
        log: receives progress lines; default: standard error.
    """
    path, say = Path(path), log or to_stderr
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r} is not one of {list(BACKENDS)}")
    load_target(path)  # as replay will load it, so that bad input fails here
    versions = (list_releases or releases)(package)
    if not versions:
        raise UsageError(f"{package!r} has no final releases to bisect")
    floor = MIN_RELEASE.get(package.lower(), ())
    oldest = next((i for i, v in enumerate(versions) if parse_version(v) >= floor), 0)
    start = _index(versions, lo, package, "--from") if lo else oldest
    end = _index(versions, hi, package, "--to") if hi else len(versions) - 1
    if start > end:
        raise UsageError(f"--from {lo} is after --to {hi}; swap them")
    versions = versions[start : end + 1]
    era_pins(package, versions[0])  # rejects releases asgifuzz cannot run on
    venvs = VenvCache(cache, log=say)
    replay = runner or (lambda v: venvs.replay(path, package, v, backend))
    probes: list[Step] = []
    known: dict[int, bool | None] = {}  # release index -> fails (None: error)

    def probe(i: int) -> bool | None:
        try:
            outcome, detail = replay(versions[i])
        except ReplayError as exc:
            outcome, detail = "error", str(exc)
        probes.append(Step(versions[i], outcome, detail))
        say(f"bisect: probe {len(probes)}: {package} {versions[i]} {outcome}")
        known[i] = None if outcome == "error" else outcome == "fails"
        return known[i]

    n = len(versions)
    step = max(1, math.ceil((n - 1) / (SAMPLES - 1)))
    for i in sorted({*range(0, n, step), n - 1}):
        probe(i)
    decided = [i for i in sorted(known) if known[i] is not None]
    for a, b in itertools.pairwise(decided):
        while known[a] != known[b]:
            inside = [i for i in range(a + 1, b) if i not in known]
            if not inside:
                break
            m = inside[len(inside) // 2]
            fails = probe(m)
            if fails == known[a]:
                a = m
            elif fails == known[b]:
                b = m
    ranges: list[FailingRange] = []
    first: int | None = None
    last = -1
    for i in sorted(i for i in known if known[i] is not None):
        if known[i]:
            first = i if first is None else first
            last = i
        elif first is not None:
            ranges.append(FailingRange(versions[first], versions[last], versions[i]))
            first = None
    if first is not None:
        ranges.append(FailingRange(versions[first], versions[last], None))
    return BisectResult(
        path, package, backend, tuple(versions), step, tuple(probes), tuple(ranges)
    )


def format_result(result: BisectResult) -> str:
    """A human-readable report of a `BisectResult`."""
    lo, hi = result.versions[0], result.versions[-1]
    lines = [
        f"{result.path} on {result.package} {lo} to {hi} ({result.backend}): "
        f"{len(result.versions)} releases, {len(result.probes)} probed "
        f"(sampling step {result.step})"
    ]
    ordered = sorted(result.probes, key=lambda p: result.versions.index(p.version))
    shown = {p.version: _WORDS.get(p.outcome, p.outcome) for p in ordered}
    for r in result.ranges:
        since = f"{r.first_failing} (the lower bound, or earlier)"
        since = since if r.first_failing == lo else r.first_failing
        fixed = f"first fixed in {r.first_fixed}" if r.first_fixed else "not fixed"
        if r.first_fixed and shown[r.first_fixed] != "passes":
            fixed += f" (where it {shown[r.first_fixed]})"
        until = r.last_failing
        until += " (the upper bound)" if r.first_fixed is None and until == hi else ""
        lines.append(f"  fails from {since} to {until}; {fixed}")
    if not result.ranges:
        missed = f" (a failing range under {result.step} releases could be missed)"
        lines.append("  fails on no probed release" + missed * (result.step > 1))
    lines.append("  probed: " + ", ".join(f"{v} {o}" for v, o in shown.items()))
    lines += [
        f"  {shown[p.version]} on {p.version}: {p.detail}" for p in ordered if p.detail
    ]
    return "\n".join(lines)
