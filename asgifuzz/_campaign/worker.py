"""A supervised worker process: what it runs (`Task`), and its heartbeat.

`worker_main` fuzzes (`asgifuzz._campaign.loop.fuzz`) under a `Heartbeat`: the
in-process watchdog, which also writes, per case, the time the case started
and the case itself (pickled) into shared memory, so that the supervisor
(`asgifuzz._campaign.supervisor`) sees a stuck or dead worker and the case it
was running (`read_case`).
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import struct
import time
from collections.abc import Callable, Collection
from multiprocessing.connection import Connection
from typing import Any

from asgifuzz._campaign.database import combined
from asgifuzz._campaign.loop import FuzzReport, fuzz, strategy_for
from asgifuzz._campaign.progress import Sampler
from asgifuzz._campaign.task import Task, limit_memory
from asgifuzz._campaign.watchdog import Watchdog
from asgifuzz._oracles.verdict import Verdict, judge
from asgifuzz.models import Case

#: Shared memory for the case in flight, pickled (1-3 KiB; a body adds ~2 MiB at most).
CASE_BYTES = 4 << 20
HEADER = struct.Struct("<I")


class Heartbeat(Watchdog):
    """The worker's watchdog, which also tells the parent about each case."""

    def __init__(self, task: Task, beat: Any, case: Any) -> None:
        super().__init__(task.case_timeout, shrink_budget=task.shrink_budget)
        self.beat, self.case = beat, case
        # One copy into shared memory (the array's own slice assignment goes
        # byte by byte: 30 us for a case of 800 bytes, against 0.4 us).
        self.view = memoryview(case).cast("B")

    def started(self, case: Case) -> None:
        """Tell the parent that ``case`` starts now (its pickle, the time)."""
        data = pickle.dumps(case, pickle.HIGHEST_PROTOCOL)
        if len(data) + HEADER.size <= CASE_BYTES:
            self.view[: HEADER.size + len(data)] = HEADER.pack(len(data)) + data
        else:
            self.view[: HEADER.size] = HEADER.pack(0)
        self.beat[0] = time.monotonic()

    def judge(
        self,
        case: Case,
        backends: tuple[str, ...],
        run: Callable[[Case, tuple[str, ...]], Verdict] = judge,
    ) -> tuple[Verdict | None, Any]:
        self.started(case)
        try:
            return super().judge(case, backends, run)
        finally:
            self.beat[0] = 0.0


def worker_main(task: Task, conn: Connection, beat: Any, case: Any, stop: Any) -> None:
    """A worker process: fuzz, sending snapshots, findings and the report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_memory(task.max_memory)
    stacks = open(task.stack_file, "w")  # noqa: SIM115 (open until the process ends)
    # What a dying worker prints (a traceback from inside Hypothesis once the
    # app's leak has used up the memory, "coroutine ignored GeneratorExit" from
    # finalizers) goes with its stacks into the finding, not to the terminal.
    os.dup2(stacks.fileno(), 2)
    faulthandler.enable(stacks, all_threads=True)
    faulthandler.register(signal.SIGUSR1, stacks, all_threads=True)
    sampler = Sampler(
        lambda s: conn.send(("snapshot", s)),
        worker=task.slot,
        stop=lambda: bool(stop.value),
    )
    sent = 0

    def on_case(report: FuzzReport, seen: Collection[str]) -> None:
        nonlocal sent
        while sent < len(report.findings):
            conn.send(("finding", report.findings[sent]))
            sent += 1
        sampler(report, seen)

    db = None if task.database is None else combined(task.database, task.shared)
    report = fuzz(
        max_time=task.max_time,
        max_cases=task.max_cases,
        backends=task.backends,
        seed_=task.seed,
        database=db,
        strategy=strategy_for(task.targets),
        known_upstream=task.known_upstream,
        on_case=on_case,
        watchdog=Heartbeat(task, beat, case),
        search=task.search,
    )
    conn.send(("done", report))
    conn.close()


def read_case(shared: Any) -> Case | None:
    """The case a `Heartbeat` wrote into ``shared`` (None: none, or half-written)."""
    (size,) = HEADER.unpack(shared[: HEADER.size])
    if not size:
        return None
    try:
        case: Case = pickle.loads(shared[HEADER.size : HEADER.size + size])
    except Exception:  # a case half-written when the worker died
        return None
    return case
