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
A crash's case cannot be shrunk in the process it killed: it is shrunk in a
fresh one, each try in a child forked for it, within the shrink budget
(`asgifuzz._campaign.crashes`); the finding says whether it was.

Signals: SIGINT and SIGTERM here set the workers' stop flag (they ignore both
themselves, end their case and hand back their report), the parent waits a
bounded time and kills what is left; a second signal kills them at once.
Workers talk through pipes and shared memory only (no semaphores, so no
resource tracker process). What a worker runs is `asgifuzz._campaign.worker`.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from asgifuzz._campaign.crashes import CrashShrinker
from asgifuzz._campaign.loop import Finding, FuzzReport
from asgifuzz._campaign.progress import Snapshot
from asgifuzz._campaign.task import MAX_MEMORY, Task, share
from asgifuzz._campaign.worker import CASE_BYTES, read_case, worker_main
from asgifuzz._campaign.workers import merge
from asgifuzz.models import Case

__all__ = ["MAX_MEMORY", "Supervisor", "Task", "supervise"]


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
                    max_cases=share(task.max_cases, workers, i),
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
        self.crashes = CrashShrinker(self.context, task, self.stop)

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = self.context.Pipe(duplex=False)
        slot.beat = self.context.RawArray("d", 1)
        slot.case = self.context.RawArray("c", CASE_BYTES)
        Path(slot.task.stack_file).write_text("")
        slot.process = self.context.Process(
            target=worker_main,
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
            while (self._active() or self.crashes.busy) and not self.at_once:
                self._step()
        finally:
            self.crashes.kill_all()
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
        shrinking = self.crashes.conns()
        for conn in wait(conns + shrinking, timeout=0.1):
            if conn in shrinking:
                self.crashes.receive(conn)
                continue
            slot = next(s for s in active if s.conn is conn)
            self._receive(slot)
        self.crashes.step()
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
        finding = self._fault(slot, key, message + " while running the case")
        if finding is not None and code is not None:
            self.crashes.add(finding, code)

    def _fault(
        self, slot: _Slot, key: str, message: str, *, record: bool = True
    ) -> Finding | None:
        """End the worker, record the fault (unless not ``record``), replace it."""
        case = self._case_in_flight(slot)
        stack = Path(slot.task.stack_file).read_text(errors="replace").strip()
        self._end(slot)
        finding = None
        if case is not None and record:
            finding = Finding(
                key=key,
                backend="both"
                if len(self.task.backends) > 1
                else self.task.backends[0],
                messages=[f"[{key}] {message}"],
                case=case,
                stack=stack,
                first_seen_s=time.perf_counter() - self.start,
                first_seen_cases=sum(r.cases for r in slot.lost),
            )
            self.faults.append(finding)
        left = self.deadline - time.monotonic()
        if self.stop.value or left < 0.5 or slot.restarts >= self.MAX_RESTARTS:
            return finding
        slot.restarts += 1
        # With a budget in cases, the new worker gets what is left of the slot's.
        cases = share(self.task.max_cases, len(self.slots), slot.task.slot)
        if cases is not None:
            cases -= sum(r.cases for r in slot.lost)
            if cases <= 0:
                return finding
        slot.task = replace(
            slot.task,
            seed=slot.task.seed + 100 * slot.restarts,
            max_time=left,
            max_cases=cases,
        )
        self._spawn(slot)
        return finding

    def _case_in_flight(self, slot: _Slot) -> Case | None:
        return read_case(slot.case)

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
