"""The supervisor: fuzz in worker processes and survive what the target does to them.

`supervise` runs the campaign in ``workers`` processes (one too, by default)
and watches them from this one, on the wall clock. Each worker runs
`asgifuzz._campaign.loop.fuzz` under a `asgifuzz._campaign.watchdog.Watchdog`
(hangs the process can still interrupt, memory errors) and, per case, a
heartbeat: the time the case started and the case itself, pickled into shared
memory (about 10 us). Then the parent sees what the worker cannot report:

* the worker died: ``crash:signal`` (killed by a signal: a segfault, the OOM
  killer) or ``crash:exit`` (``os._exit``, ``sys.exit``), with the case in
  flight and the stack ``faulthandler`` wrote on a fatal signal;
* the heartbeat stopped for ``case_timeout + grace`` (code stuck in C holding
  the GIL, an app that swallows the watchdog's exception): ``faulthandler``
  dumps every thread on SIGUSR1, the worker is killed: ``hang:wall``.

A dead worker is replaced (a new seed, the time left), so the campaign goes on.
The case of a crash is not shrunk: a case that kills its process cannot be
shrunk in that process.

Signals: SIGINT and SIGTERM here set the workers' stop flag (they ignore both
themselves, end their case and hand back their report), the parent waits a
bounded time and kills what is left; a second signal kills them at once.
Workers talk through pipes and shared memory only (no semaphores, so no
resource tracker process).
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import pickle
import resource
import shutil
import signal
import struct
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from asgifuzz._campaign.database import combined
from asgifuzz._campaign.loop import Finding, FuzzReport, fuzz, strategy_for
from asgifuzz._campaign.progress import Sampler, Snapshot
from asgifuzz._campaign.watchdog import CASE_TIMEOUT, SHRINK_BUDGET, Watchdog
from asgifuzz._campaign.workers import merge
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._oracles.verdict import Verdict, judge
from asgifuzz._targets.config import TargetConfig
from asgifuzz.models import Case

#: Shared memory for the case in flight, pickled (1-3 KiB; a body adds ~2 MiB at most).
CASE_BYTES = 4 << 20
#: Default address-space limit per worker, in MB (RLIMIT_AS).
MAX_MEMORY = 2048
_HEADER = struct.Struct("<I")


@dataclass(frozen=True)
class Task:
    """What one worker runs (picklable)."""

    max_time: float
    backends: tuple[str, ...]
    seed: int
    database: str | None = None
    shared: str | None = None
    targets: TargetConfig | None = None
    known_upstream: KnownBugs | None = None
    case_timeout: float = CASE_TIMEOUT
    shrink_budget: float = SHRINK_BUDGET
    max_memory: int = MAX_MEMORY
    slot: int = 0
    stack_file: str = ""


class _Heartbeat(Watchdog):
    """The worker's watchdog, which also tells the parent about each case."""

    def __init__(self, task: Task, beat: Any, case: Any) -> None:
        super().__init__(task.case_timeout, shrink_budget=task.shrink_budget)
        self.beat, self.case = beat, case

    def judge(
        self,
        case: Case,
        backends: tuple[str, ...],
        run: Callable[[Case, tuple[str, ...]], Verdict] = judge,
    ) -> tuple[Verdict | None, Any]:
        data = pickle.dumps(case, pickle.HIGHEST_PROTOCOL)
        if len(data) + _HEADER.size > CASE_BYTES:
            data = b""  # too big to keep: a fault of this case has no case
        self.case[: _HEADER.size + len(data)] = _HEADER.pack(len(data)) + data
        self.beat[0] = time.monotonic()
        try:
            return super().judge(case, backends, run)
        finally:
            self.beat[0] = 0.0


def _worker(task: Task, conn: Connection, beat: Any, case: Any, stop: Any) -> None:
    """A worker process: fuzz, sending snapshots, findings and the report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit = task.max_memory * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
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
        backends=task.backends,
        seed_=task.seed,
        database=db,
        strategy=strategy_for(task.targets),
        known_upstream=task.known_upstream,
        on_case=on_case,
        watchdog=_Heartbeat(task, beat, case),
    )
    conn.send(("done", report))
    conn.close()


@dataclass
class _Slot:
    """One worker place: its current process and what came from it."""

    task: Task
    process: Any = None
    conn: Connection | None = None
    beat: Any = None
    case: Any = None
    report: FuzzReport | None = None
    last: Snapshot | None = None
    findings: list[Finding] = field(default_factory=list)
    lost: list[FuzzReport] = field(default_factory=list)
    restarts: int = 0
    ended: float = 0.0


class Supervisor:
    """Starts, watches, replaces and stops the workers of one campaign."""

    #: How long stopping workers may take before they are killed.
    STOP_GRACE = 3.0
    MAX_RESTARTS = 20

    def __init__(
        self,
        task: Task,
        workers: int,
        on_snapshot: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.task, self.on_snapshot = task, on_snapshot
        self.dir = Path(tempfile.mkdtemp(prefix="asgifuzz-"))
        self.slots = [
            _Slot(
                replace(
                    task,
                    seed=task.seed * 1000 + i,
                    slot=i,
                    stack_file=str(self.dir / f"stack-{i}.txt"),
                )
            )
            for i in range(workers)
        ]
        self.stop = self.context.RawValue("b", 0)
        self.signal = 0
        self.at_once = False
        self.stopping_since = 0.0
        self.faults: list[Finding] = []
        self.start = time.perf_counter()
        self.deadline = time.monotonic() + task.max_time
        self.grace = max(1.0, task.case_timeout)

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = self.context.Pipe(duplex=False)
        slot.beat = self.context.RawArray("d", 1)
        slot.case = self.context.RawArray("c", CASE_BYTES)
        Path(slot.task.stack_file).write_text("")
        slot.process = self.context.Process(
            target=_worker,
            args=(slot.task, theirs, slot.beat, slot.case, self.stop),
            name=f"asgifuzz-worker-{slot.task.slot}",
            daemon=True,
        )
        slot.process.start()
        theirs.close()
        slot.conn = ours
        slot.last = None

    def _on_signal(self, signo: int, frame: Any) -> None:
        if self.signal:
            self.at_once = True  # the second one: kill them, no more waiting
        self.signal = self.signal or signo
        self.stop.value = 1
        self.stopping_since = self.stopping_since or time.monotonic()

    def run(self) -> FuzzReport:
        """Fuzz until every worker is done; the merged report with the faults."""
        old = {
            s: signal.signal(s, self._on_signal)
            for s in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for slot in self.slots:
                self._spawn(slot)
            while self._active() and not self.at_once:
                self._step()
        finally:
            self._kill_all()
            shutil.rmtree(self.dir, ignore_errors=True)  # the stack files
            for s, handler in old.items():
                signal.signal(s, handler)
        return self._report()

    def _active(self) -> list[_Slot]:
        return [s for s in self.slots if s.process is not None]

    def _step(self) -> None:
        active = self._active()
        conns = [s.conn for s in active if s.conn is not None]
        for conn in wait(conns, timeout=0.1) if conns else []:
            slot = next(s for s in active if s.conn is conn)
            self._receive(slot)
        now = time.monotonic()
        for slot in self._active():
            started = slot.beat[0]
            if slot.report is not None:
                slot.process.join(timeout=0)
                if not slot.process.is_alive() or now - slot.ended > 1.0:
                    self._end(slot)
            elif not slot.process.is_alive() and slot.conn is None:
                self._died(slot)
            elif started and now - started > self.task.case_timeout + self.grace:
                self._hung(slot)
            elif self.stop.value and now - self.stopping_since > self.STOP_GRACE + (
                self.task.case_timeout
            ):
                self._end(slot)

    def _receive(self, slot: _Slot) -> None:
        assert slot.conn is not None
        try:
            kind, value = slot.conn.recv()
        except (EOFError, OSError):
            slot.conn.close()
            slot.conn = None
            slot.process.join(timeout=0.5)
            return
        if kind == "snapshot":
            slot.last = value
            # a replaced worker counts from 0: add what its predecessors did
            value = replace(value, cases=value.cases + sum(r.cases for r in slot.lost))
            if self.on_snapshot is not None:
                self.on_snapshot(value)
        elif kind == "finding":
            slot.findings.append(value)
        else:
            slot.report, slot.ended = value, time.monotonic()

    def _end(self, slot: _Slot) -> None:
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        if slot.conn is not None:
            slot.conn.close()
        slot.process = slot.conn = None
        if slot.report is None:
            slot.lost.append(self._partial(slot))

    def _kill_all(self) -> None:
        for slot in self._active():
            self._end(slot)

    def _partial(self, slot: _Slot) -> FuzzReport:
        """What a worker that never reported did, from its last snapshot."""
        partial = FuzzReport(backends=self.task.backends)
        if slot.last is not None:
            partial.cases = slot.last.cases
            partial.outcomes.update(slot.last.outcomes)
        partial.findings, slot.findings = slot.findings, []
        return partial

    def _hung(self, slot: _Slot) -> None:
        """The heartbeat stopped: dump every thread's stack, kill, report, replace."""
        size = os.path.getsize(slot.task.stack_file)
        os.kill(slot.process.pid, signal.SIGUSR1)
        for _ in range(20):
            time.sleep(0.025)  # the supervisor's own wall clock, not the fuzz path's
            if os.path.getsize(slot.task.stack_file) > size:
                break
        limit = self.task.case_timeout + self.grace
        self._fault(
            slot,
            "hang:wall",
            f"the case held the process for more than {limit:g}s of wall-clock time "
            "where the worker's own watchdog could not interrupt it (code stuck in C, "
            "or an app that swallows the watchdog's exception); the worker was killed",
        )

    def _died(self, slot: _Slot) -> None:
        code = slot.process.exitcode
        before = [*slot.findings, *(f for r in slot.lost for f in r.findings)]
        if any(f.key == "resource:memory" for f in before):
            # The app keeps what it allocated: once a case ran the worker out
            # of memory, anything may fail next (Hypothesis itself). That death
            # is the resource:memory finding's, not a crash of its own.
            self._fault(slot, "", "", record=False)
            return
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            why = " (the kernel's OOM killer?)" if -code == signal.SIGKILL else ""
            key, message = "crash:signal", f"the worker was killed by {name}{why}"
        else:
            key, message = "crash:exit", f"the worker exited with status {code}"
        self._fault(slot, key, message + " while running the case")

    def _fault(
        self, slot: _Slot, key: str, message: str, *, record: bool = True
    ) -> None:
        """End the worker, record the fault (unless not ``record``), replace it."""
        case = self._case_in_flight(slot)
        stack = Path(slot.task.stack_file).read_text(errors="replace").strip()
        backends = self.task.backends
        self._end(slot)
        if case is not None and record:
            self.faults.append(
                Finding(
                    key=key,
                    backend="both" if len(backends) > 1 else backends[0],
                    messages=[f"[{key}] {message}"],
                    case=case,
                    stack=stack,
                    first_seen_s=time.perf_counter() - self.start,
                    first_seen_cases=sum(r.cases for r in slot.lost),
                )
            )
        left = self.deadline - time.monotonic()
        if self.stop.value or left < 0.5 or slot.restarts >= self.MAX_RESTARTS:
            return
        slot.restarts += 1
        slot.task = replace(
            slot.task, seed=slot.task.seed + 100 * slot.restarts, max_time=left
        )
        self._spawn(slot)

    def _case_in_flight(self, slot: _Slot) -> Case | None:
        (size,) = _HEADER.unpack(slot.case[: _HEADER.size])
        if not size:
            return None
        try:
            case: Case = pickle.loads(slot.case[_HEADER.size : _HEADER.size + size])
        except Exception:  # a case half-written when the worker died
            return None
        return case

    def _report(self) -> FuzzReport:
        reports = [s.report for s in self.slots if s.report is not None]
        reports += [r for s in self.slots for r in s.lost]
        reports.append(FuzzReport(backends=self.task.backends, findings=self.faults))
        merged = merge(reports)  # elapsed: the longest worker's fuzzing time
        if not any(s.report for s in self.slots):
            merged.elapsed = time.perf_counter() - self.start
        merged.interrupted = merged.interrupted or bool(self.signal)
        merged.signal = self.signal
        return merged


def supervise(
    task: Task,
    workers: int,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> FuzzReport:
    """Run ``task`` in ``workers`` supervised processes (see the module's doc)."""
    return Supervisor(task, workers, on_snapshot).run()
