"""What one supervised process runs: `Task` (picklable), and its memory limit.

Kept light (no Hypothesis): the crash shrinker imports it too
(`asgifuzz._campaign.crashes`), and its start-up is part of its time budget.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from asgifuzz._campaign.watchdog import CASE_TIMEOUT, SHRINK_BUDGET
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._targets.config import TargetConfig

#: Default address-space limit per worker, in MB (RLIMIT_AS).
MAX_MEMORY = 2048
#: The most disconnect points a drawn case is run again at (``fuzz --points``).
MAX_POINTS = 16


@dataclass(frozen=True)
class Search:
    """How the fuzz loop searches, besides drawing cases.

    ``points``: run each drawn case whose client never hangs up again with
    the client gone at up to this many points of its transcript (0: none;
    `asgifuzz._campaign.points`). (Guidance by novelty, measured and left out:
    see `asgifuzz._campaign.novelty`.)
    """

    points: int = MAX_POINTS


@dataclass(frozen=True)
class Task:
    """What one worker runs (picklable)."""

    max_time: float
    backends: tuple[str, ...]
    seed: int
    #: Generated cases at most (None: as many as ``max_time`` allows).
    max_cases: int | None = None
    database: str | None = None
    shared: str | None = None
    targets: TargetConfig | None = None
    known_upstream: KnownBugs | None = None
    case_timeout: float = CASE_TIMEOUT
    shrink_budget: float = SHRINK_BUDGET
    max_memory: int = MAX_MEMORY
    slot: int = 0
    stack_file: str = ""
    search: Search = Search()


def share(max_cases: int | None, workers: int, i: int) -> int | None:
    """Worker ``i``'s part of a budget of ``max_cases`` split between ``workers``."""
    if max_cases is None:
        return None
    return max_cases // workers + (i < max_cases % workers)


def budget(max_time: float, max_cases: int | None) -> str:
    """The budget as the reports show it: ``60s``, or ``60s or 500 cases``."""
    if max_cases is None:
        return f"{max_time:g}s"
    return f"{max_time:g}s or {max_cases} cases"


def limit_memory(mb: int) -> None:
    """Limit this process's address space to ``mb`` MB (``RLIMIT_AS``)."""
    limit = mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
