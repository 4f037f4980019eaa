"""Live progress: snapshots, the board, the displays, workers' stop, and real Ctrl-C."""

from __future__ import annotations

import io
import json
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from asgifuzz._campaign import progress as _progress
from asgifuzz._campaign.loop import FuzzReport, fuzz
from asgifuzz._campaign.progress import (
    Board,
    LineDisplay,
    LiveDisplay,
    NoDisplay,
    Sampler,
    Snapshot,
    collect,
    make_display,
    status_line,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def report(cases: int, **outcomes: int) -> FuzzReport:
    r = FuzzReport(("asyncio", "trio"), cases=cases)
    r.outcomes = Counter({k.replace("_", ":"): v for k, v in outcomes.items()})
    return r


def snap(worker: int, cases: int, failures: tuple[str, ...] = ()) -> Snapshot:
    outcomes = {"asyncio:response": cases, "trio:response": cases}
    return Snapshot(worker, 1.0, cases, outcomes, failures)


def test_the_sampler_sends_on_its_beat_only() -> None:
    clock, sent = Clock(), list[Snapshot]()
    sampler = Sampler(sent.append, worker=3, every=1.0, clock=clock)
    sampler(report(1), {"I3"})
    sampler(report(2), {"I3"})  # same instant: throttled
    clock.now += 1.0
    sampler(report(3, asyncio_response=3), {"I4:app", "I3"})
    assert [s.cases for s in sent] == [1, 3]
    assert sent[1] == Snapshot(3, 1.0, 3, {"asyncio:response": 3}, ("I3", "I4:app"))


def test_the_sampler_turns_the_stop_event_into_ctrl_c() -> None:
    stop = threading.Event()
    sampler = Sampler(lambda _: None, every=0.0, stop=stop.is_set)
    sampler(report(1), ())
    stop.set()
    with pytest.raises(KeyboardInterrupt, match="asked to stop"):
        sampler(report(2), ())


def test_the_board_adds_up_the_latest_snapshot_of_each_worker() -> None:
    clock = Clock()
    board = Board(("asyncio", "trio"), budget=60, workers=2, clock=clock)
    clock.now += 1
    board.update(snap(0, 10, ("I3",)))
    board.update(snap(1, 20, ("I3", "I1:RuntimeError")))
    board.update(snap(0, 30, ("I3",)))  # replaces worker 0's earlier snapshot
    assert board.cases == 50
    assert board.failures == ["I1:RuntimeError", "I3"]
    assert board.per_backend() == {"asyncio": (50, 50.0), "trio": (50, 50.0)}
    # one sample per half second at most
    assert [(s.cases, s.failures) for s in board.samples] == [(10, 1)]
    clock.now += 0.5
    board.update(snap(1, 25, ("I3",)))
    assert [s.cases for s in board.samples] == [10, 55]
    final = report(60)
    final.elapsed, final.interrupted = 1.2, True
    board.finish(final)
    assert board.samples[-1].cases == 60
    assert board.samples[-1].t == 1.5  # the board's clock ran longer
    assert board.interrupted


def test_a_status_line_says_everything_on_one_line() -> None:
    clock = Clock()
    board = Board(("asyncio", "trio"), budget=60, clock=clock)
    clock.now += 10
    board.update(snap(0, 100, ("I3",)))
    line = status_line(board)
    assert "\n" not in line
    assert line.startswith("asgifuzz: 10s/60s | asyncio 100 cases (10.0/s)")
    assert "failures 1 (I3)" in line
    assert "outcomes asyncio: response=100; trio: response=100" in line
    empty = Board(("asyncio",), budget=1, clock=clock)
    assert "failures 0 |" in status_line(empty)
    assert "asyncio 0 cases (0.0/s)" in status_line(empty)  # no time has passed
    assert "asyncio: -" in status_line(empty)


def test_lines_come_every_n_seconds_and_once_at_the_end() -> None:
    clock, out = Clock(), io.StringIO()
    board = Board(("asyncio",), budget=60, clock=clock)
    display = LineDisplay(out, every=10)
    for _ in range(25):
        clock.now += 1
        board.update(snap(0, 1))
        display.show(board)
    display.close(board)
    lines = out.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines] == [
        "asgifuzz: 11s/60s",
        "asgifuzz: 21s/60s",
        "asgifuzz: 25s/60s",
    ]


def test_the_live_table_is_drawn_with_rich() -> None:
    clock, out = Clock(), io.StringIO()
    board = Board(("asyncio", "trio"), budget=60, workers=2, clock=clock)
    display = LiveDisplay(out, force_terminal=True, width=120, color_system=None)
    clock.now += 2
    board.update(snap(0, 40, ("I3",)))
    display.show(board)
    display.show(board)  # within 1/fps: not redrawn
    clock.now += 1
    board.update(snap(1, 50, ("I3", "I4:response")))
    display.close(board)
    text = out.getvalue()
    assert "3s / 60s, 2 workers" in text
    assert "distinct failures so far: 2 (I3, I4:response)" in text
    assert "asyncio" in text
    assert "30.0" in text  # 90 cases in 3 s
    assert "response=90" in text
    # closed before it ever showed: it still draws the last state
    quiet, early = io.StringIO(), Board(("trio",), budget=5, clock=clock)
    LiveDisplay(quiet, force_terminal=True, color_system=None).close(early)
    assert "distinct failures so far: 0" in quiet.getvalue()


def test_make_display_picks_by_mode_and_terminal() -> None:
    out = io.StringIO()  # not a terminal
    assert isinstance(make_display("auto", stream=out), LineDisplay)
    assert isinstance(make_display("lines", stream=out), LineDisplay)
    assert isinstance(make_display("off", stream=out), NoDisplay)
    assert isinstance(make_display("live", stream=out), LiveDisplay)
    NoDisplay().show(Board(("trio",), budget=1))
    NoDisplay().close(Board(("trio",), budget=1))


def test_fuzz_stops_cleanly_on_ctrl_c_and_keeps_what_it_did() -> None:
    seen: list[int] = []

    def on_case(r: FuzzReport, keys: Collection[str]) -> None:
        seen.append(r.cases)
        if r.cases == 7:
            raise KeyboardInterrupt

    r = fuzz(max_time=30, backends=("asyncio",), on_case=on_case)
    assert r.interrupted
    assert r.cases == 7 == seen[-1]
    assert r.elapsed < 30
    assert sum(r.outcomes.values()) == 7
    assert r.to_data()["interrupted"] is True


class DoneAfter(Future[Any]):
    """A future that reports done after ``n`` questions."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def done(self) -> bool:
        self.n -= 1
        return self.n < 0


def test_collect_feeds_snapshots_and_turns_ctrl_c_into_the_stop_event() -> None:
    q: queue.Queue[Snapshot] = queue.Queue()
    for i in range(3):
        q.put(snap(0, i))
    stop = threading.Event()
    got: list[int] = []

    def on_snapshot(s: Snapshot) -> None:
        got.append(s.cases)
        if s.cases == 1:
            raise KeyboardInterrupt  # Ctrl-C lands while a snapshot is shown

    interrupted = collect([DoneAfter(6)], q, stop, on_snapshot, poll=0.001)
    assert interrupted
    assert stop.is_set()
    assert got == [0, 1, 2]  # and the waiting went on after Ctrl-C
    # without Ctrl-C (and with nobody listening) it only waits
    q.put(snap(0, 9))
    assert not collect([DoneAfter(3)], q, threading.Event(), None, poll=0.001)
    assert q.empty()


def test_worker_init_leaves_sigint_to_the_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, Any]] = []
    monkeypatch.setattr(signal, "signal", lambda s, h: calls.append((s, h)))
    monkeypatch.setattr(_progress, "_channel", None)
    assert _progress.worker_sampler(0) is None  # not in a worker: no hook
    q: queue.Queue[Snapshot] = queue.Queue()
    stop = threading.Event()
    _progress.worker_init(q, stop)
    assert calls == [(signal.SIGINT, signal.SIG_IGN)]
    sampler = _progress.worker_sampler(4)
    assert sampler is not None
    sampler(report(5), ())
    assert q.get_nowait().worker == 4
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        Sampler(q.put_nowait, every=0, stop=stop.is_set)(report(6), ())


# Real Ctrl-C: a child process, SIGINT, and what it leaves behind.

CHILD = """\
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the CI ignores it
from asgifuzz._cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _interrupt(argv: list[str], *, after: Callable[[str], bool]) -> tuple[int, str]:
    """Run ``asgifuzz`` in a child, send SIGINT once ``after(line)``, return its end."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    lines = []
    try:
        for line in child.stdout:
            lines.append(line)
            if after(line):
                child.send_signal(signal.SIGINT)
                break
        lines.append(child.stdout.read())
        status = child.wait(timeout=120)
    finally:
        child.kill()
        child.stdout.close()
    return status, "".join(lines)


def _started(line: str) -> bool:
    """A progress line with cases run on it."""
    return line.startswith("asgifuzz: ") and " 0 cases" not in line and "|" in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_with_a_summary_and_whole_reports(
    workers: str, tmp_path: Path
) -> None:
    argv = ["fuzz", "--max-time", "120", "--workers", workers, "--backend", "trio"]
    argv += ["--no-database", "--progress", "lines", "--progress-every", "0.2"]
    outputs = {name: tmp_path / name for name in ("s.json", "j.xml", "r.md")}
    argv += ["--json", str(outputs["s.json"]), "--junit", str(outputs["j.xml"])]
    argv += ["--report", str(outputs["r.md"]), "--corpus", str(tmp_path / "corpus")]
    status, out = _interrupt(argv, after=_started)
    data = json.loads(outputs["s.json"].read_text())
    assert data["interrupted"] is True
    assert status == (1 if data["findings"] else 130)
    assert data["cases"] > 0
    assert "asgifuzz: interrupted after" in out
    assert f"cases run: {data['cases']} generated cases" in out
    assert "Traceback" not in out
    import xml.etree.ElementTree as ET

    suite = ET.parse(outputs["j.xml"]).getroot()
    assert suite.get("tests") == str(len(data["findings"]) + 1)
    assert "interrupted (Ctrl-C)" in outputs["r.md"].read_text()
    leftovers = [p.name for p in tmp_path.rglob(".*.tmp")]
    assert leftovers == []  # nothing half-written


def test_the_line_counts_points_and_shrinking_apart_from_generated_cases() -> None:
    clock = Clock()
    board = Board(("asyncio",), budget=60, clock=clock)
    clock.now += 2
    assert "other runs" not in status_line(board)
    board.update(Snapshot(0, 2.0, 10, {"asyncio:response": 10}, (), 30, 7))
    line = status_line(board)
    assert "asyncio 10 cases (5.0/s)" in line
    assert "other runs: 30 at disconnect points, 7 shrinking or replaying" in line
