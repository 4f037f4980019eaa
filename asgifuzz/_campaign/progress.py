"""Live progress of a fuzz campaign: snapshots, their aggregate, and two displays.

Each fuzzing process turns its running `FuzzReport` into a `Snapshot` a few
times a second (`Sampler`, called once per case; all it costs per case is a
clock read). With ``--workers`` the snapshots travel to the parent through a
multiprocessing queue (`collect`); the parent's `Board` adds up the latest
snapshot of every worker and keeps a timeline (cases and failures over time)
for the report's plot. A display shows the board: a rich live table on a
terminal, one plain line every few seconds elsewhere (CI logs), or nothing.

Ctrl-C: a single process stops where it is (`asgifuzz._campaign.loop.fuzz` catches the
`KeyboardInterrupt` and returns what it did). Workers ignore SIGINT; the parent
catches it and sets a stop event, which each worker's sampler turns into a
`KeyboardInterrupt` at its next case, so every worker ends the same clean way
and hands back its report.
"""

from __future__ import annotations

import queue as queue_module
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from asgifuzz._campaign.loop import FuzzReport

Mode = Literal["auto", "live", "lines", "off"]
MODES: tuple[Mode, ...] = ("auto", "live", "lines", "off")
#: Seconds between a process's snapshots, and between the timeline's samples.
SNAPSHOT_EVERY = 0.25
SAMPLE_EVERY = 0.5


@dataclass(frozen=True)
class Snapshot:
    """What one fuzzing process has done so far (picklable: it crosses processes)."""

    worker: int
    elapsed: float
    cases: int
    outcomes: dict[str, int]
    failures: tuple[str, ...]  # the failure keys seen so far, shrunk or not
    #: Runs that are not generated cases: at disconnect points, and shrinking
    #: (with replays of saved cases).
    point_runs: int = 0
    shrink_runs: int = 0


@dataclass(frozen=True)
class Sample:
    """One point of the timeline: seconds in, cases run, distinct failures seen."""

    t: float
    cases: int
    failures: int


class Sampler:
    """The per-case hook of `fuzz`: sends a `Snapshot` every ``every`` seconds.

    ``stop`` (for workers) is checked on the same beat; once it says so, the
    sampler raises `KeyboardInterrupt`, which `fuzz` handles like Ctrl-C.
    """

    def __init__(
        self,
        send: Callable[[Snapshot], None],
        *,
        worker: int = 0,
        every: float = SNAPSHOT_EVERY,
        stop: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send, self._worker, self._every = send, worker, every
        self._stop, self._clock = stop, clock
        self._start = clock()
        self._next = self._start

    def snapshot(self, report: FuzzReport, seen: Collection[str]) -> Snapshot:
        return Snapshot(
            worker=self._worker,
            elapsed=self._clock() - self._start,
            cases=report.cases,
            outcomes=dict(report.outcomes),
            failures=tuple(sorted(seen)),
            point_runs=report.point_runs,
            shrink_runs=report.shrink_runs + report.replay_runs,
        )

    def __call__(self, report: FuzzReport, seen: Collection[str]) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._every
        if self._stop is not None and self._stop():
            raise KeyboardInterrupt("asked to stop by the parent process")
        self._send(self.snapshot(report, seen))


@dataclass
class Board:
    """The campaign as the parent sees it: the latest snapshot of every worker."""

    backends: tuple[str, ...]
    budget: float
    workers: int = 1
    clock: Callable[[], float] = time.monotonic
    latest: dict[int, Snapshot] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    interrupted: bool = False

    def __post_init__(self) -> None:
        self.start = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    @property
    def cases(self) -> int:
        return sum(s.cases for s in self.latest.values())

    @property
    def other_runs(self) -> str:
        """The runs that are not generated cases, said in words ("" if none)."""
        points = sum(s.point_runs for s in self.latest.values())
        shrinking = sum(s.shrink_runs for s in self.latest.values())
        said = [f"{points} at disconnect points"] * bool(points)
        said += [f"{shrinking} shrinking or replaying"] * bool(shrinking)
        return f"other runs: {', '.join(said)}" if said else ""

    @property
    def outcomes(self) -> Counter[str]:
        return sum((Counter(s.outcomes) for s in self.latest.values()), Counter())

    @property
    def failures(self) -> list[str]:
        return sorted({k for s in self.latest.values() for k in s.failures})

    def per_backend(self) -> dict[str, tuple[int, float]]:
        """Generated cases run on each backend and their rate (per second of the
        run), from the outcomes of generated cases."""
        outcomes, elapsed = self.outcomes, self.elapsed
        found = {}
        for backend in self.backends:
            n = sum(v for k, v in outcomes.items() if k.startswith(f"{backend}:"))
            found[backend] = (n, n / elapsed if elapsed > 0 else 0.0)
        return found

    def update(self, snapshot: Snapshot) -> None:
        self.latest[snapshot.worker] = snapshot
        t = self.elapsed
        if not self.samples or t - self.samples[-1].t >= SAMPLE_EVERY:
            self.samples.append(Sample(t, self.cases, len(self.failures)))

    def finish(self, report: FuzzReport) -> None:
        """The last sample, from the merged report (snapshots can lag behind it)."""
        self.interrupted = self.interrupted or report.interrupted
        self.samples.append(
            Sample(
                max(report.elapsed, self.elapsed), report.cases, len(report.findings)
            )
        )


def _kinds(outcomes: Counter[str], backend: str) -> str:
    mine = {
        k.partition(":")[2]: v for k, v in outcomes.items() if k.startswith(backend)
    }
    return " ".join(f"{k}={v}" for k, v in sorted(mine.items())) or "-"


def status_line(board: Board) -> str:
    """One plain line: elapsed/budget, cases and rate per backend, failures, outcomes."""
    parts = [f"asgifuzz: {board.elapsed:.0f}s/{board.budget:g}s"]
    for backend, (n, rate) in board.per_backend().items():
        parts.append(f"{backend} {n} cases ({rate:.1f}/s)")
    if board.other_runs:
        parts.append(board.other_runs)
    failures = board.failures
    parts.append(
        f"failures {len(failures)}" + (f" ({', '.join(failures)})" * bool(failures))
    )
    outcomes = board.outcomes
    parts.append(
        "outcomes " + "; ".join(f"{b}: {_kinds(outcomes, b)}" for b in board.backends)
    )
    return " | ".join(parts)


class Display(Protocol):
    """Shows a `Board` while the campaign runs."""

    def show(self, board: Board) -> None: ...

    def close(self, board: Board) -> None: ...


class NoDisplay:
    """``--progress off``."""

    def show(self, board: Board) -> None:
        pass

    def close(self, board: Board) -> None:
        pass


class LineDisplay:
    """A plain line every ``every`` seconds (and a last one at the end): for CI logs."""

    def __init__(self, stream: IO[str], every: float = 10.0) -> None:
        self._stream, self._every = stream, every
        self._next: float | None = None

    def show(self, board: Board) -> None:
        t = board.elapsed
        if self._next is None:
            self._next = t + self._every
        elif t >= self._next:
            self._next = t + self._every
            self._write(board)

    def _write(self, board: Board) -> None:
        self._stream.write(status_line(board) + "\n")
        self._stream.flush()

    def close(self, board: Board) -> None:
        self._write(board)


class LiveDisplay:
    """A rich table redrawn in place, at most ``fps`` times a second."""

    def __init__(self, stream: IO[str], *, fps: float = 4.0, **console: Any) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream, **console)
        self._live = Live(console=self._console, auto_refresh=False, transient=False)
        self._every, self._next = 1.0 / fps, 0.0
        self._started = False

    def render(self, board: Board) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        done = min(board.elapsed, board.budget)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            "[bold]asgifuzz[/]",
            ProgressBar(total=board.budget, completed=done, width=30),
            f"{board.elapsed:.0f}s / {board.budget:g}s"
            + (f", {board.workers} workers" if board.workers > 1 else ""),
        )
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("backend", "generated cases", "cases/s", "outcomes"):
            table.add_column(name, justify="right" if "cases" in name else "left")
        outcomes = board.outcomes
        for backend, (n, rate) in board.per_backend().items():
            table.add_row(backend, str(n), f"{rate:.1f}", _kinds(outcomes, backend))
        failures = board.failures
        text = f"distinct failures so far: [bold]{len(failures)}[/]"
        text += f" ({', '.join(failures)})" if failures else ""
        rows: list[Any] = [grid, table, text]
        if board.other_runs:
            rows.insert(2, board.other_runs)
        outer = Table.grid()
        for row in rows:
            outer.add_row(row)
        return outer

    def show(self, board: Board) -> None:
        now = board.elapsed
        if now < self._next:
            return
        self._next = now + self._every
        if not self._started:
            self._live.start()
            self._started = True
        self._live.update(self.render(board), refresh=True)

    def close(self, board: Board) -> None:
        if not self._started:
            self._live.start()
        self._live.update(self.render(board), refresh=True)
        self._live.stop()


def make_display(
    mode: Mode, *, every: float = 10.0, stream: IO[str] | None = None
) -> Display:
    """The display for ``--progress MODE`` (``auto``: live on a terminal, else lines).

    Progress goes to standard error; ``auto`` draws live only when both standard
    output and standard error are terminals, so a redirected run stays line by line.
    """
    out = stream or sys.stderr
    if mode == "auto":
        terminal = out.isatty() and sys.stdout.isatty()
        mode = "live" if terminal else "lines"
    if mode == "off":
        return NoDisplay()
    if mode == "lines":
        return LineDisplay(out, every)
    return LiveDisplay(out)


# With --workers: the queue, the stop event, and the parent's loop.


class Flag(Protocol):
    """A multiprocessing (or threading) event."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...


_channel: tuple[Any, Flag] | None = None


def worker_init(snapshots: Any, stop: Flag) -> None:
    """Runs first in each worker process: SIGINT is the parent's to handle."""
    global _channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _channel = (snapshots, stop)


def worker_sampler(worker: int) -> Sampler | None:
    """The hook for worker ``worker``: snapshots to the queue, stops on the event."""
    if _channel is None:
        return None
    snapshots, stop = _channel
    return Sampler(snapshots.put_nowait, worker=worker, stop=stop.is_set)


def collect(
    futures: Sequence[Future[Any]],
    snapshots: Any,
    stop: Flag,
    on_snapshot: Callable[[Snapshot], None] | None,
    *,
    poll: float = 0.2,
) -> bool:
    """Feed the workers' snapshots to ``on_snapshot`` until every worker is done.

    Ctrl-C in the parent sets ``stop`` (the workers end their round and return
    what they did) and waiting goes on. Returns whether it was interrupted.
    """
    interrupted = False
    while True:
        try:
            while not all(f.done() for f in futures):
                try:
                    snapshot = snapshots.get(timeout=poll)
                except queue_module.Empty:
                    continue
                if on_snapshot is not None:
                    on_snapshot(snapshot)
            break
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
    return interrupted
