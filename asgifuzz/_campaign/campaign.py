"""A fuzz campaign from a `FuzzConfig`: ``Campaign(config).run() -> FuzzReport``.

What ``asgifuzz fuzz`` runs (the CLI parses its options into a `FuzzConfig`,
runs the campaign and prints the report). A `Campaign` opens the example
database and imports the user's targets when it is made (so bad input fails
before anything runs), then `Campaign.run` fuzzes in this process or in
``workers`` processes (`asgifuzz._campaign.workers`), shows live progress
(`asgifuzz._campaign.progress`), saves each finding as a corpus entry, and
writes the ``json``, ``junit`` and ``report`` files (each whole or not at all,
see `asgifuzz._campaign.report`).

By default the cases run in supervised worker processes, even with one worker
(`asgifuzz._campaign.supervisor`: hangs, crashes and memory faults become
findings); ``supervised=False`` runs them in this process (or, with workers,
in an unsupervised pool), under the in-process watchdog only.

Exit status: 3 when a user target failed every case and the run stopped
early (`asgifuzz._campaign.misconfig`), else 1 when failures were found that
fail the run (`failing`: with ``fail_on="any"`` every one, ``"new"`` those not
of known upstream bugs, ``"user"`` the new ones that are also the user's; the
default is ``"user"`` with the user's targets, else ``"any"``), else 128 + the
signal (130 for Ctrl-C, 143 for SIGTERM) when a signal stopped the run early,
else 0.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlette

from asgifuzz._campaign.database import DEFAULT, combined
from asgifuzz._campaign.findings import failing
from asgifuzz._campaign.loop import FuzzReport, fuzz, strategy_for
from asgifuzz._campaign.progress import (
    Board,
    Display,
    Mode,
    Sampler,
    Snapshot,
    make_display,
)
from asgifuzz._campaign.report import RunInfo, write_junit, write_markdown
from asgifuzz._campaign.supervisor import MAX_MEMORY, Task, supervise
from asgifuzz._campaign.task import Search, budget
from asgifuzz._campaign.watchdog import CASE_TIMEOUT, SHRINK_BUDGET, Watchdog
from asgifuzz._campaign.workers import fuzz_parallel
from asgifuzz._corpus.entries import environment, save_finding, write_atomically
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._targets.config import TargetConfig
from asgifuzz._targets.specs import used_by
from asgifuzz._types import BACKENDS

INTERRUPTED = 130
#: The exit status of a run stopped by a target that fails every case.
MISCONFIGURED = 3


@dataclass(frozen=True)
class FuzzConfig:
    """Everything a campaign needs, as plain data (the ``fuzz`` command's options).

    ``database`` and ``shared_database`` are specs (`asgifuzz._campaign.database`);
    ``database=None`` runs without one (``--no-database``), and the shared one is
    then ignored too. ``known_upstream`` labels the findings that match corpus
    entries (`asgifuzz._corpus.known`); ``fail_on`` is ``any`` (exit 1 on any
    finding), ``new`` (only on new ones), ``user`` (only on new ones that are
    the user's, not Starlette's) or ``""``: ``user`` with the user's targets,
    else ``any`` (`failing_on`). ``command`` is the command line shown in the
    reports.
    """

    max_time: float = 60.0
    #: Generated cases at most, split between the workers (None: no limit).
    max_cases: int | None = None
    backends: tuple[str, ...] = BACKENDS
    seed: int = 0
    workers: int = 1
    database: str | None = DEFAULT
    shared_database: str | None = None
    corpus: Path | None = None
    json: Path | None = None
    junit: Path | None = None
    report: Path | None = None
    progress: Mode = "auto"
    progress_every: float = 10.0
    targets: TargetConfig = field(default_factory=TargetConfig)
    known_upstream: KnownBugs = field(default_factory=KnownBugs)
    fail_on: str = ""
    command: str = "asgifuzz fuzz"
    #: Wall-clock seconds per case, seconds to shrink a round's faults, MB per worker.
    case_timeout: float = CASE_TIMEOUT
    shrink_budget: float = SHRINK_BUDGET
    max_memory: int = MAX_MEMORY
    supervised: bool = True
    #: The disconnect points and the guidance (`Search`).
    search: Search = Search()  # noqa: RUF009 (frozen)

    @property
    def failing_on(self) -> str:
        """``fail_on``, or its default: ``user`` in user-target mode, else ``any``."""
        return self.fail_on or ("any" if self.targets.empty else "user")


def _redact(spec: str | None) -> str:
    """A database spec without its password (``redis://:secret@host``)."""
    if not spec:
        return "-"
    return re.sub(r"//[^@/]*@", "//***@", spec)


class Campaign:
    """One fuzz campaign: its database, targets, progress, corpus and reports."""

    def __init__(self, config: FuzzConfig, *, display: Display | None = None) -> None:
        c = self.config = config
        self.starlette: str = getattr(starlette, "__version__", "?")
        self.database = (
            None if c.database is None else combined(c.database, c.shared_database)
        )
        self.strategy = strategy_for(c.targets)
        self.board = Board(c.backends, c.max_time, c.workers)
        self.display = display or make_display(c.progress, every=c.progress_every)

    def run(self) -> FuzzReport:
        """Fuzz for ``max_time`` seconds (Ctrl-C ends it early, with what was done),
        then save the findings to the corpus and write the report files."""
        c = self.config
        known = c.known_upstream or None
        if c.supervised:
            task = Task(
                max_time=c.max_time,
                max_cases=c.max_cases,
                backends=c.backends,
                seed=c.seed,
                database=c.database,
                shared=c.shared_database,
                targets=None if c.targets.plain else c.targets,
                known_upstream=known,
                case_timeout=c.case_timeout,
                shrink_budget=c.shrink_budget,
                max_memory=c.max_memory,
                search=c.search,
            )
            report = supervise(task, c.workers, on_snapshot=self.on_snapshot)
        elif c.workers > 1:
            report = fuzz_parallel(
                c.workers,
                max_time=c.max_time,
                max_cases=c.max_cases,
                backends=c.backends,
                seed=c.seed,
                database=c.database,
                shared=c.shared_database,
                targets=None if c.targets.plain else c.targets,
                known_upstream=known,
                search=c.search,
                **hooks(self, c.workers),
            )
        else:
            with _sigterm_as_ctrl_c() as stopped_by:
                report = fuzz(
                    max_time=c.max_time,
                    max_cases=c.max_cases,
                    backends=c.backends,
                    seed_=c.seed,
                    database=self.database,
                    strategy=self.strategy,
                    known_upstream=known,
                    watchdog=Watchdog(c.case_timeout, shrink_budget=c.shrink_budget),
                    search=c.search,
                    **hooks(self, c.workers),
                )
            if report.interrupted:
                report.signal = stopped_by[0] or signal.SIGINT
        self.finish(report)
        self.save(report)
        if c.json is not None:
            data = report.to_data()
            data["starlette"] = self.starlette
            data["fail_on"] = c.failing_on
            c.json.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(c.json, data)
        report.written = self.write_reports(report)
        return report

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """A worker's (or this process's) progress: update the board and show it."""
        self.board.update(snapshot)
        self.display.show(self.board)

    def on_case(self) -> Sampler:
        """The per-case hook for a run in this process."""
        return Sampler(self.on_snapshot)

    def finish(self, report: FuzzReport) -> None:
        """Close the display."""
        self.board.finish(report)
        self.display.close(self.board)

    def save(self, report: FuzzReport) -> None:
        """Save each finding to the ``corpus`` (`Finding.saved`: the entry, or None
        where a smaller case with its signature was saved before)."""
        if self.config.corpus is None:
            return
        for finding in report.findings:
            finding.saved = save_finding(
                self.config.corpus,
                finding.key,
                finding.case,
                finding.backend,
                finding.messages,
                finding.signature,
                targets=used_by(finding.case),
                swapped=finding.swapped,
            )

    def settings(self) -> dict[str, str]:
        """The run settings, as the reports show them (passwords hidden)."""
        c = self.config
        return {
            "command": c.command,
            "budget": budget(c.max_time, c.max_cases),
            "workers": str(c.workers),
            "seed": str(c.seed),
            "backends": "+".join(self.board.backends),
            "database": "none" if c.database is None else _redact(c.database),
            "shared database": _redact(c.shared_database),
            "corpus": str(c.corpus) if c.corpus else "-",
        }

    def write_reports(self, report: FuzzReport) -> list[Path]:
        """``junit`` and ``report``; returns the files written."""
        saved = {f.ident: f.saved for f in report.findings if f.saved is not None}
        info = RunInfo(
            report,
            self.settings(),
            environment(),
            samples=self.board.samples,
            saved=saved,
            fail_on=self.config.failing_on,
        )
        written = []
        if self.config.junit is not None:
            write_junit(self.config.junit, info)
            written.append(self.config.junit)
        if self.config.report is not None:
            png = write_markdown(self.config.report, info)
            written += [self.config.report, *([png] if png else [])]
        return written

    def exit_status(self, report: FuzzReport) -> int:
        """3 when misconfigured, else 1 with findings that fail the run
        (`failing` under `failing_on`), else 128 + the signal when interrupted,
        else 0."""
        if report.misconfigured:
            return MISCONFIGURED
        if any(failing(f, self.config.failing_on) for f in report.findings):
            return 1
        if report.interrupted:
            return 128 + report.signal if report.signal else INTERRUPTED
        return 0


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[list[int]]:
    """In this process, SIGTERM stops the run as Ctrl-C does; yields [signal]."""
    stopped_by = [0]

    def on_term(signo: int, frame: object) -> None:
        stopped_by[0] = signo
        raise KeyboardInterrupt("SIGTERM")

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield stopped_by
    finally:
        signal.signal(signal.SIGTERM, old)


def hooks(campaign: Campaign, workers: int) -> dict[str, Any]:
    """The keyword arguments that connect the fuzz call to the campaign."""
    if workers > 1:
        return {"on_snapshot": campaign.on_snapshot}
    return {"on_case": campaign.on_case()}
