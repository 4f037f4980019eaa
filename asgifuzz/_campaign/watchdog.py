"""The in-process watchdog: a wall-clock limit per case, and memory faults.

The one wall clock allowed on the fuzz path (everything else runs on virtual
time). Around each case `Watchdog.judge` arms ``signal.setitimer(ITIMER_REAL,
timeout)``; when it fires, the handler records the stack of every thread
(``sys._current_frames``) and raises `WallTimeout` in the main thread (and again every 0.1 s until the case
is over, for an app that catches it). That
interrupts a pure-Python busy loop, ``time.sleep``, ``Event.wait``, a blocking
socket read (each is woken by the signal) and the event loop waiting on a stuck
worker thread; the case becomes a `Fault` ``hang:wall`` and the process goes on.
It cannot interrupt code stuck in C with the GIL held, nor an app that swallows
the exception and keeps looping: the supervisor's heartbeat check catches those
(`asgifuzz._campaign.supervisor`). A `MemoryError` (from the target, or from
``RLIMIT_AS`` set by the supervisor's workers) is a `Fault` ``resource:memory``.

Shrinking a hang costs wall time, so it is bounded: after the first fault of a
round, each case gets ``shrink_timeout`` (a hang is a hang, 0.25 s shows it),
and once ``shrink_budget`` seconds have passed `StopShrinking` (a
``BaseException``: Hypothesis does not catch it) ends the round with the
smallest faulting case seen so far.

The driver's full collections (`asgifuzz._driver.collector`: the garbage of
every case before, collected when the counts say) are the process's, not the
case's: the limit is extended by the time they took while the case ran.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from asgifuzz._driver import collector
from asgifuzz._oracles.verdict import InvariantViolation, Verdict, judge
from asgifuzz._oracles.violations import Violation

if TYPE_CHECKING:
    from asgifuzz.models import Case

#: Default wall-clock seconds per case (a case is ~1 ms; imports on the first ~0.3 s).
CASE_TIMEOUT = 2.0
#: Default wall-clock seconds for shrinking the faults of one round.
SHRINK_BUDGET = 5.0
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


class WallTimeout(BaseException):
    """Raised in the main thread when a case ran out of wall-clock time
    (a ``BaseException``, so that the app's ``except Exception`` lets it by)."""


@dataclass(frozen=True)
class FaultViolation(Violation):
    """A fault of the process rather than a broken ASGI invariant: ``invariant``
    is ``hang``, ``crash`` or ``resource`` (`asgifuzz._oracles.registry.FAULTS`)."""


class Fault(InvariantViolation):
    """A case that hung the process, killed it, or ran out of memory.

    An `InvariantViolation`, so that it flows like any other failure (Hypothesis
    shrinks it, the pytest plugin saves it); ``stack`` holds the stack of every
    thread when it was caught (or what the dying worker wrote).
    """

    def __init__(
        self, key: str, message: str, case: Case, backend: str, stack: str = ""
    ) -> None:
        invariant, _, tag = key.partition(":")
        super().__init__([FaultViolation(invariant, message, tag)], case, backend)
        self.key = key
        self.stack = stack
        self.message = message


class StopShrinking(BaseException):
    """The shrink budget is spent: ``faults`` are the smallest seen, by key."""

    def __init__(self, faults: Sequence[InvariantViolation]) -> None:
        super().__init__(f"shrink budget spent with {len(faults)} fault(s)")
        self.faults = faults


def where(frames: dict[int, FrameType], main: FrameType | None) -> str:
    """The innermost frame of the code under test (not the library's, not ours)."""
    for frame in ([main] if main else []) + list(frames.values()):
        f: FrameType | None = frame
        while f is not None:
            name = f.f_code.co_filename
            if not name.startswith((_PACKAGE, *_LIBRARY)) and name[0] != "<":
                return f"{os.path.basename(name)}:{f.f_lineno} in {f.f_code.co_name}"
            f = f.f_back
    return "an unknown place"


def format_threads(main: FrameType | None = None) -> str:
    """The stack of every thread (the main one first, from ``main``)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    frames = sys._current_frames()
    me = threading.main_thread().ident
    if main is not None and me is not None:
        frames[me] = main
    order = sorted(frames, key=lambda ident: ident != me)
    parts = []
    for ident in order:
        stack = "".join(traceback.format_stack(frames[ident]))
        parts.append(f"Thread {names.get(ident, '?')} ({ident}):\n{stack}")
    return "\n".join(parts)


def _backend_of(frame: FrameType | None, default: str) -> str:
    """The backend of the `asgifuzz._driver.runner.run` call ``frame`` is in."""
    while frame is not None:
        if frame.f_code.co_name == "run" and frame.f_code.co_filename.endswith(
            os.path.join("_driver", "runner.py")
        ):
            return str(frame.f_locals.get("backend", default))
        frame = frame.f_back
    return default


def memory_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or holds, a `MemoryError`."""
    if exc is None:
        return False
    if isinstance(exc, MemoryError):
        return True
    return any(memory_error(e) for e in getattr(exc, "exceptions", ()))


class Watchdog:
    """Runs cases under a wall-clock limit; turns hangs and memory errors into faults."""

    def __init__(
        self,
        timeout: float = CASE_TIMEOUT,
        *,
        shrink_timeout: float | None = None,
        shrink_budget: float = SHRINK_BUDGET,
    ) -> None:
        self.timeout = timeout
        self.shrink_timeout = shrink_timeout or min(timeout, max(0.25, timeout / 4))
        self.shrink_budget = shrink_budget
        self.backend = "asyncio"
        self.fired: tuple[str, str, str] | None = None  # message, stack, backend
        self.best: dict[str, Fault] = {}
        self.shrinking_since: float | None = None
        self.usable = threading.current_thread() is threading.main_thread()
        self.paused_at_arm = 0.0  # `collector.paused_s` when armed, plus what was given

    def _on_alarm(self, signo: int, frame: FrameType | None) -> None:
        # Again every 0.1 s until the case is over: the app (or the driver, for the
        # next backend of the case) may catch the first one and go on.
        paused = collector.paused_s() - self.paused_at_arm
        if self.fired is None and paused > 0:
            # Full collections held the process: the case gets that time again.
            self.paused_at_arm += paused
            signal.setitimer(signal.ITIMER_REAL, paused)
            return
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        if self.fired is not None:
            raise WallTimeout(self.fired[0])
        frames = sys._current_frames()
        at = where(frames, frame)
        message = (
            f"the case held the process for more than {self.limit:g}s of wall-clock "
            f"time (--case-timeout), at {at}"
        )
        self.fired = (message, format_threads(frame), _backend_of(frame, self.backend))
        raise WallTimeout(message)

    @property
    def limit(self) -> float:
        return self.timeout if self.shrinking_since is None else self.shrink_timeout

    @contextmanager
    def armed(self) -> Iterator[None]:
        """The body runs under the wall-clock limit (a no-op off the main thread)."""
        self.fired, self.paused_at_arm = None, collector.paused_s()
        if not self.usable:
            yield
            return
        old = signal.signal(signal.SIGALRM, self._on_alarm)
        hook, gc_on = sys.unraisablehook, gc.isenabled()
        signal.setitimer(signal.ITIMER_REAL, self.limit)
        try:
            yield
        except WallTimeout:
            if self.fired is None:
                raise
        finally:
            while True:
                try:  # an alarm may land here, after the body: it fired all the same
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(signal.SIGALRM, old)
                    break
                except WallTimeout:
                    continue
            if self.fired is not None:
                # It may have landed in the driver's own bookkeeping: undo that.
                sys.unraisablehook = hook
                if gc_on:
                    gc.enable()

    def fault(self, case: Case, backends: tuple[str, ...]) -> Fault | None:
        """The fault of the case just run under `armed`, if any."""
        if self.fired is None:
            return None
        message, stack, backend = self.fired
        return Fault("hang:wall", message, case, backend, stack)

    def judge(
        self,
        case: Case,
        backends: tuple[str, ...],
        run: Callable[[Case, tuple[str, ...]], Verdict] = judge,
    ) -> tuple[Verdict | None, Fault | None]:
        """Judge ``case`` under the limit: a verdict, or the fault it caused.

        Raises `StopShrinking` once the faults of this round have been shrunk
        for ``shrink_budget`` seconds."""
        since = self.shrinking_since
        if since is not None and time.perf_counter() - since > self.shrink_budget:
            raise StopShrinking(list(self.best.values()))
        self.backend = backends[0]
        verdict: Verdict | None = None
        try:
            with self.armed():
                verdict = run(case, backends)
        except MemoryError as exc:
            return None, self._memory(case, backends[0], exc)
        fault = self.fault(case, backends)
        if fault is None and verdict is not None:
            for backend, outcome in verdict.outcomes.items():
                if memory_error(outcome.escaped):
                    return None, self._memory(case, backend, outcome.escaped)
        return verdict, fault

    def _memory(self, case: Case, backend: str, exc: BaseException | None) -> Fault:
        return Fault(
            "resource:memory",
            f"the case ran out of memory ({type(exc).__name__}: {exc}); the limit "
            "is --max-memory in a worker",
            case,
            backend,
        )

    def raising(self, fault: Fault) -> Fault:
        """Note ``fault`` as about to be raised to Hypothesis (shrinking starts)."""
        if self.shrinking_since is None:
            self.shrinking_since = time.perf_counter()
        self.best[fault.key] = fault  # Hypothesis only tries smaller cases
        return fault

    def round_done(self) -> None:
        """A round ended: the next fault starts a new shrink budget."""
        self.shrinking_since = None
        self.best = {}
