"""``asgifuzz fuzz`` as a campaign: live progress while it runs, reports at the end.

The CLI builds one `Campaign` per run. It owns the progress `Board` and display
(`asgifuzz._campaign.progress`), hands the fuzz loop its per-case hook (or, with
``--workers``, the parent's snapshot callback), remembers the corpus entries
written for the findings, and writes ``--junit`` and ``--report`` (each whole or
not at all, see `asgifuzz._campaign.report`).

Exit status: 1 when failures were found, else 130 (128 + SIGINT) when Ctrl-C
stopped the run early, else 0.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asgifuzz._campaign.progress import (
    MODES,
    Board,
    Display,
    Sampler,
    Snapshot,
    make_display,
)

if TYPE_CHECKING:
    from asgifuzz._campaign.loop import FuzzReport

INTERRUPTED = 130


def add_options(fz: argparse.ArgumentParser) -> None:
    """The ``fuzz`` options for progress and reports."""
    fz.add_argument(
        "--junit", type=Path, metavar="PATH", help="also write a JUnit XML report"
    )
    fz.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write a Markdown report (and a PNG plot beside it, with matplotlib)",
    )
    fz.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="live progress on standard error: live (a table redrawn in place), lines "
        "(one line every --progress-every seconds), off; default auto: live on a "
        "terminal, else lines",
    )
    fz.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between progress lines; default 10",
    )


def _redact(spec: str | None) -> str:
    """A database spec without its password (``redis://:secret@host``)."""
    if not spec:
        return "-"
    return re.sub(r"//[^@/]*@", "//***@", spec)


class Campaign:
    """Progress and reports of one ``asgifuzz fuzz`` run."""

    def __init__(
        self,
        args: argparse.Namespace,
        backends: tuple[str, ...],
        starlette: str,
        *,
        display: Display | None = None,
    ) -> None:
        self.args, self.starlette = args, starlette
        self.board = Board(backends, args.max_time, args.workers)
        self.display = display or make_display(args.progress, every=args.progress_every)
        self.saved: dict[str, Path] = {}

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """A worker's (or this process's) progress: update the board and show it."""
        self.board.update(snapshot)
        self.display.show(self.board)

    def on_case(self) -> Sampler:
        """The per-case hook for a run in this process."""
        return Sampler(self.on_snapshot)

    def finish(self, report: FuzzReport) -> None:
        """Close the display; say so when the run was stopped early."""
        self.board.finish(report)
        self.display.close(self.board)
        if report.interrupted:
            sys.stdout.write(
                f"asgifuzz: interrupted after {report.elapsed:.1f}s; the summary "
                "covers what was done (a failure still being shrunk is lost, but the "
                "example database keeps it for the next run)\n"
            )
            sys.stdout.flush()

    def settings(self) -> dict[str, str]:
        a = self.args
        database = "none" if a.no_database else _redact(a.database)
        return {
            "command": "asgifuzz " + " ".join(sys.argv[1:]),
            "budget": f"{a.max_time:g}s",
            "workers": str(a.workers),
            "seed": str(a.seed),
            "backends": "+".join(self.board.backends),
            "database": database,
            "shared database": _redact(a.shared_database),
            "corpus": str(a.corpus) if a.corpus else "-",
        }

    def write_reports(self, report: FuzzReport) -> list[Path]:
        """``--junit`` and ``--report``; returns the files written."""
        from asgifuzz._campaign.report import RunInfo, write_junit, write_markdown
        from asgifuzz._corpus.entries import environment

        info = RunInfo(
            report,
            self.settings(),
            environment(),
            samples=self.board.samples,
            saved=self.saved,
        )
        written = []
        if self.args.junit is not None:
            write_junit(self.args.junit, info)
            written.append(self.args.junit)
        if self.args.report is not None:
            png = write_markdown(self.args.report, info)
            written += [self.args.report, *([png] if png else [])]
        return written

    def exit_status(self, report: FuzzReport) -> int:
        if report.findings:
            return 1
        return INTERRUPTED if report.interrupted else 0


def hooks(campaign: Campaign, workers: int) -> dict[str, Any]:
    """The keyword arguments that connect the fuzz call to the campaign."""
    if workers > 1:
        return {"on_snapshot": campaign.on_snapshot}
    return {"on_case": campaign.on_case()}
