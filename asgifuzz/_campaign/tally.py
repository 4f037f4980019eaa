"""Honest counts: generated cases apart from the runs that shrink or replay.

Hypothesis calls the test with the database's saved cases (reuse), then with
the cases it generates (generate, and target with guidance), then with the
candidates it shrinks each failure through, and once more with each shrunk
failure; the test body cannot tell which call is which. The round's
statistics can: `hypothesis.statistics.collector` hears, at the end of the
round, how many test cases each phase ran and for how long (what ``pytest
--hypothesis-show-statistics`` prints). `Round` records each call as it comes
(its outcomes and its runs at disconnect points), counts it provisionally
(no more generated cases than the round's ``max_examples``; the outcomes of
those only, the calls past them as shrinking, so a live display never shows
shrinking as generation), and `Round.settle`
tells the calls apart in their order: the replays, the generated cases, the
rest shrinking. Without statistics (a round that Ctrl-C or the run's end
stopped), the first ``max_examples`` calls count as generated.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis.statistics import collector

from asgifuzz._campaign.findings import FuzzReport
from asgifuzz.models._parts import Client

__all__ = ["Round"]

#: Hypothesis's phases whose test cases are generated ones.
GENERATING = ("generate-phase", "target-phase")
#: The statuses of test cases that reached the test body (the others stopped
#: while drawing: an overrun, a rejected draw).
RAN = ("valid", "interesting")


@dataclass
class _Call:
    kinds: tuple[str, ...]
    points: int
    seconds: float


def _ran(stats: dict[str, Any], phases: tuple[str, ...]) -> tuple[int, float]:
    """The test cases of ``phases`` that reached the body, and their seconds."""
    n, seconds = 0, 0.0
    for phase in phases:
        found = stats.get(phase)
        if isinstance(found, dict):
            n += sum(c.get("status") in RAN for c in found.get("test-cases", ()))
            seconds += float(found.get("duration-seconds", 0.0))
    return n, seconds


class Round:
    """The calls of one Hypothesis round, counted into ``report``."""

    def __init__(
        self, report: FuzzReport, max_examples: int, shrinking: bool = False
    ) -> None:
        # A round that only shrinks (`asgifuzz._campaign.deferred`) generates none.
        self.report, self.max_examples = report, 0 if shrinking else max_examples
        self.cases_before = report.cases
        self.outcomes_before = Counter(report.outcomes)
        self.runs_before = (report.point_runs, report.shrink_runs, report.replay_runs)
        self.calls: list[_Call] = []
        self.stats: dict[str, Any] | None = None
        #: After a failure in the round: the disconnect points that failed in
        #: it, the only ones the rest of the round tries (`asgifuzz._campaign.points`).
        self.failing: list[Client] | None = None
        self.started = time.perf_counter()

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Hear the round's statistics (Hypothesis sends them when it ends)."""
        # Hypothesis types the variable by its default, None.
        with collector.with_value(self._heard):  # type: ignore[arg-type]
            yield

    def _heard(self, stats: dict[str, Any]) -> None:
        self.stats = stats

    def call(self, kinds: tuple[str, ...], points: int, started: float) -> None:
        """One call of the test: its outcomes (``backend:kind``), its runs at
        disconnect points, when it started (``time.perf_counter()``)."""
        self.calls.append(_Call(kinds, points, time.perf_counter() - started))
        report = self.report
        if len(self.calls) <= self.max_examples:  # provisionally generated
            report.outcomes.update(kinds)
            report.point_runs += points
        else:  # provisionally shrinking
            report.shrink_runs += 1 + points
        report.cases = self.cases_before + min(len(self.calls), self.max_examples)

    def counting(self) -> int:
        """The generated cases so far, the current call's included
        (provisional until `settle`)."""
        return self.cases_before + min(len(self.calls) + 1, self.max_examples)

    def settle(self, first_seen: dict[str, tuple[float, int]]) -> None:
        """Count the round's calls as replays, generated cases and shrinking;
        a failure first seen while shrinking (counted provisionally past the
        generated cases, in ``first_seen`` and the findings) was seen after
        all of them."""
        report, calls, stats = self.report, self.calls, self.stats
        wall = time.perf_counter() - self.started
        if stats is not None:
            replayed, _ = _ran(stats, ("reuse-phase",))
            generated, seconds = _ran(stats, GENERATING)
            replayed = min(replayed, len(calls))
            generated = min(generated, len(calls) - replayed)
        else:
            replayed, generated = 0, min(len(calls), self.max_examples)
            seconds = wall - sum(c.seconds for c in calls[generated:])
            seconds = seconds if self.max_examples else 0.0
        replays = calls[:replayed]
        mine = calls[replayed : replayed + generated]
        shrinks = calls[replayed + generated :]
        report.cases = self.cases_before + generated
        points, shrinking, replaying = self.runs_before
        report.point_runs = points + sum(c.points for c in mine)
        report.replay_runs = replaying + sum(1 + c.points for c in replays)
        report.shrink_runs = shrinking + sum(1 + c.points for c in shrinks)
        report.generation_s += max(seconds, 0.0)
        # The outcomes are those of generated cases only.
        report.outcomes.clear()
        report.outcomes.update(self.outcomes_before)
        report.outcomes.update(k for c in mine for k in c.kinds)
        for key, (t, n) in first_seen.items():
            first_seen[key] = (t, min(n, report.cases))
        for finding in report.findings:
            finding.first_seen_cases = min(finding.first_seen_cases, report.cases)
