"""Many workers on one machine: one process each, own seed, shared database and corpus.

Each worker runs `asgifuzz._campaign.loop.fuzz` with its own seed and rebuilds the
Hypothesis database from its spec (a directory database is safe to share between
processes; so is Redis). Findings are merged by signature, keeping the smallest
case; corpus entries are written by the parent, under the corpus lock.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from asgifuzz._campaign.database import combined
from asgifuzz._campaign.findings import merge_findings
from asgifuzz._campaign.loop import FuzzReport, fuzz, strategy_for
from asgifuzz._campaign.progress import (
    Snapshot,
    collect,
    worker_init,
    worker_sampler,
)
from asgifuzz._campaign.task import Search, share
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._targets.config import TargetConfig


def _one(
    max_time: float,
    max_cases: int | None,
    backends: tuple[str, ...],
    seed: int,
    database: str | None,
    shared: str | None,
    targets: TargetConfig | None = None,
    worker: int = 0,
    known_upstream: KnownBugs | None = None,
    search: Search = Search(),  # noqa: B008 (frozen)
) -> FuzzReport:
    db = None if database is None else combined(database, shared)
    strategy = strategy_for(targets)
    return fuzz(
        max_time=max_time,
        max_cases=max_cases,
        backends=backends,
        seed_=seed,
        database=db,
        strategy=strategy,
        on_case=worker_sampler(worker),
        known_upstream=known_upstream,
        search=search,
    )


def merge(reports: list[FuzzReport]) -> FuzzReport:
    """One report: cases and outcomes added up, one finding per signature (the
    smallest case; findings of one key with different signatures stay apart)."""
    merged = FuzzReport(backends=reports[0].backends)
    merged.elapsed = max(r.elapsed for r in reports)
    merged.outcomes = sum((r.outcomes for r in reports), Counter())
    merged.cases = sum(r.cases for r in reports)
    merged.point_runs = sum(r.point_runs for r in reports)
    merged.shrink_runs = sum(r.shrink_runs for r in reports)
    merged.replay_runs = sum(r.replay_runs for r in reports)
    # side by side: the cases of all over the longest generation (as elapsed)
    merged.generation_s = max(r.generation_s for r in reports)
    merged.interrupted = any(r.interrupted for r in reports)
    merged.findings = merge_findings(f for r in reports for f in r.findings)
    one = {m.target: m for r in reports for m in r.misconfigured}  # one per target
    merged.misconfigured = list(one.values())
    return merged


def fuzz_parallel(
    workers: int,
    *,
    max_time: float,
    max_cases: int | None = None,
    backends: tuple[str, ...],
    seed: int,
    database: str | None,
    shared: str | None,
    targets: TargetConfig | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    known_upstream: KnownBugs | None = None,
    search: Search = Search(),  # noqa: B008 (frozen)
) -> FuzzReport:
    """Run ``workers`` fuzzers side by side (worker i uses seed ``seed * 1000 + i``).

    ``targets`` (import specs) are imported again in each worker. Each worker's
    progress reaches ``on_snapshot``; Ctrl-C stops them all (see `asgifuzz._campaign.progress`).
    """
    context = multiprocessing.get_context("spawn")
    snapshots, stop = context.Queue(), context.Event()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=worker_init,
        initargs=(snapshots, stop),
    ) as pool:
        futures = [
            pool.submit(
                _one,
                max_time,
                share(max_cases, workers, i),
                backends,
                seed * 1000 + i,
                database,
                shared,
                targets,
                i,
                known_upstream,
                search,
            )
            for i in range(workers)
        ]
        interrupted = collect(futures, snapshots, stop, on_snapshot)
        merged = merge([f.result() for f in futures])
    merged.interrupted = merged.interrupted or interrupted
    return merged
