"""Shrinking a crash: in a fresh process, each try in a child forked for it.

A case that kills its worker (``crash:exit``, ``crash:signal``) cannot be
shrunk in that worker. The supervisor hands it to a shrinker process
(`shrinker_main`, started like a worker), which imports the targets, runs one
harmless case to load what a first case loads, and then runs the crashing
case, and each simpler one (`asgifuzz._campaign.reduce`), in a child forked
for it (`attempt`): a child that dies the same way (the same exit status, or
the same signal) still crashes. A child that lives past its time limit (the
watchdog's per-case limit while shrinking) is killed and counts as not
crashing; its own ``SIGALRM`` ends it even if the shrinker is gone.

The whole shrink, the shrinker's start included, ends by a deadline: the
shrink budget of the run (`asgifuzz._campaign.watchdog.SHRINK_BUDGET`, 5 s by
default, the one that bounds the shrinking of hangs); each smaller case is sent to the supervisor as it is found, so what
runs out of time keeps the smallest crashing case so far. `CrashShrinker`
is the supervisor's side: one shrink at a time, one per key, and a note in the
finding's messages on what became of its case (shrunk, partly shrunk, or kept
as it ran, and why).
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from asgifuzz._campaign.findings import Finding
from asgifuzz._campaign.reduce import Shrunk, shrink
from asgifuzz._campaign.task import Task, limit_memory
from asgifuzz._campaign.watchdog import Watchdog
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case

#: What a child that survived its case writes before it exits.
_SURVIVED = b"1"


def attempt(case: Case, backends: tuple[str, ...], timeout: float) -> int | None:
    """Run ``case`` in a forked child: the exit status (negative: the signal)
    of a child the case killed, or None when the child survived it or ran
    over ``timeout`` seconds (it is killed then)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child: coverage does not follow a fork)
        os.close(read)
        faulthandler.disable()  # a crash here is expected: no dump
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, timeout + 1.0)
        code = 0
        try:
            judge(case, backends)
        except SystemExit as exc:  # as in a worker: the process exits
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:  # as in a worker: an error ends the process
            code = 1
        else:
            os.write(write, _SURVIVED)
        os._exit(code)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], timeout)
        said = os.read(read, 1) if ready else None
    finally:
        os.close(read)
    if said is None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if said is None or said == _SURVIVED:
        return None
    return os.waitstatus_to_exitcode(status)


def shrinker_main(
    task: Task, case: Case, code: int, deadline: float, conn: Connection, stop: Any
) -> None:
    """The shrinker process: shrink ``case``, which ended a worker with exit
    status ``code``, until ``deadline`` (``time.monotonic()``, the same clock in
    every process); sends ``("smaller", case)`` for each smaller crashing
    case, then ``("done", Shrunk, reproduced)``."""
    os.setpgrp()  # its own group: the supervisor kills it with its children
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_memory(task.max_memory)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what the target prints while crashing
    os.dup2(devnull, 2)
    if task.targets is not None and not task.targets.empty:
        task.targets.allow()
    judge(Case(), task.backends)  # asgifuzz's own models only: never crashes
    # In a function of its own: the first run of a process may leave this
    # frame untraced (coverage measures the shrinker too).
    _shrink_and_send(task, case, code, deadline, conn, stop)


def _shrink_and_send(
    task: Task, case: Case, code: int, deadline: float, conn: Connection, stop: Any
) -> None:
    timeout = Watchdog(task.case_timeout).shrink_timeout
    parent = os.getppid()

    def crashes(candidate: Case) -> bool:
        return attempt(candidate, task.backends, timeout) == code

    reproduced = crashes(case)
    result = Shrunk(case, tries=1, failed=int(reproduced))
    if reproduced:
        result = shrink(
            case,
            crashes,
            deadline=deadline,
            on_smaller=lambda smaller: conn.send(("smaller", smaller)),
            stop=lambda: bool(stop.value) or os.getppid() != parent,
        )
        result.tries += 1
        result.failed += 1
    conn.send(("done", result, reproduced))
    conn.close()


@dataclass
class _Job:
    """One crash to shrink, and the process shrinking it."""

    finding: Finding
    code: int
    deadline: float = 0.0
    process: Any = None
    conn: Connection | None = None
    started: float = 0.0
    smaller: int = 0
    done: bool = False


@dataclass
class CrashShrinker:
    """The supervisor's side: start, hear and end the shrinker processes."""

    context: Any
    task: Task
    stop: Any
    jobs: list[_Job] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    #: Shrinkers that said they are done, given `CLOSE_GRACE` s to exit, by then.
    closing: list[tuple[Any, float]] = field(default_factory=list)

    CLOSE_GRACE = 3.0

    @property
    def budget(self) -> float:
        return self.task.shrink_budget

    def add(self, finding: Finding, code: int) -> None:
        """Shrink ``finding``'s case (the first crash of each key only)."""
        if finding.key in self.keys:
            self._note(finding, "not shrunk: an earlier crash of this key was")
            return
        self.keys.add(finding.key)
        self.jobs.append(_Job(finding, code))

    @property
    def busy(self) -> bool:
        return bool(self.jobs or self.closing)

    def conns(self) -> list[Connection]:
        return [j.conn for j in self.jobs[:1] if j.conn is not None]

    def step(self) -> None:
        """Start the next shrink; end one that is past its time."""
        now = time.monotonic()
        for process, by in list(self.closing):
            if not process.is_alive() or now > by:
                self._kill(process)
                self.closing.remove((process, by))
        if not self.jobs:
            return
        job = self.jobs[0]
        now = time.monotonic()
        if job.process is None:
            if self.stop.value:
                self._finish(job, "not shrunk: the run was stopped first")
                return
            self._start(job)
            return
        if not job.process.is_alive() and job.conn is None:
            code = job.process.exitcode
            why = f"the shrinker process ended (exit status {code}) without a result"
            self._finish(job, self._kept(job, why))
        elif now > job.deadline + Watchdog(self.task.case_timeout).shrink_timeout + 2:
            self._finish(job, self._ran_out(job))

    def _start(self, job: _Job) -> None:
        ours, theirs = self.context.Pipe(duplex=False)
        job.started = time.monotonic()
        job.deadline = job.started + self.budget
        job.process = self.context.Process(
            target=shrinker_main,
            args=(self.task, job.finding.case, job.code, job.deadline, theirs),
            kwargs={"stop": self.stop},
            name="asgifuzz-shrinker",
            daemon=True,
        )
        job.process.start()
        theirs.close()
        job.conn = ours

    def receive(self, conn: Connection) -> None:
        """A message from the shrinker on ``conn``."""
        job = self.jobs[0]
        try:
            message = conn.recv()
        except (EOFError, OSError):
            conn.close()
            job.conn = None
            return
        if message[0] == "smaller":
            job.finding.case = message[1]
            job.smaller += 1
            return
        job.done = True
        result, reproduced = message[1], message[2]
        assert isinstance(result, Shrunk)
        job.finding.case = result.case
        seconds = time.monotonic() - job.started
        if not reproduced:
            note = (
                "not shrunk: the case did not crash a fresh process the same way "
                "(it may need what ran before it in the worker); the case is as it ran"
            )
        elif result.complete:
            note = (
                f"shrunk in a fresh process in {seconds:.1f}s: {result.failed} of "
                f"{result.tries} tries (each in a child process) crashed it the same way"
            )
        else:
            note = self._ran_out(job, result.tries)
        self._finish(job, note)

    def _ran_out(self, job: _Job, tries: int | None = None) -> str:
        done = f" after {tries} tries" if tries is not None else ""
        if self.stop.value:
            return self._kept(job, f"shrinking was stopped with the run{done}")
        return self._kept(job, f"the shrink budget ({self.budget:g}s) ran out{done}")

    def _kept(self, job: _Job, why: str) -> str:
        """What the finding's case is when the shrink did not finish."""
        if job.smaller:
            return f"partly shrunk: {why}; the case is the smallest that crashed"
        return f"not shrunk: {why}; the case is as it ran"

    def _finish(self, job: _Job, note: str) -> None:
        self._note(job.finding, note)
        self._end(job)
        self.jobs.remove(job)

    def _end(self, job: _Job) -> None:
        if job.process is not None:
            if job.done:  # it ends on its own (`step` waits for it, a while)
                self.closing.append((job.process, time.monotonic() + self.CLOSE_GRACE))
            else:
                self._kill(job.process)
        if job.conn is not None:
            job.conn.close()
            job.conn = None

    @staticmethod
    def _kill(process: Any) -> None:
        """Kill ``process`` and the children it forked, and reap it."""
        if process.is_alive():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
        process.join()

    def kill_all(self) -> None:
        """End every shrink now, each finding with what it has."""
        for job in list(self.jobs):
            self._finish(job, self._ran_out(job))
        for process, _ in self.closing:
            self._kill(process)
        self.closing = []

    def _note(self, finding: Finding, note: str) -> None:
        finding.messages = [*finding.messages, f"[{finding.key}] {note}"]
