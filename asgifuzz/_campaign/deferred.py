"""Shrinking after generation: the failures of the time budget, shrunk at its end.

Shrinking a failure takes hundreds of runs (each one case on every backend),
and a Hypothesis round shrinks its failures before the next round draws
anything: while the fuzz loop shrank one, it generated nothing. A run that
meets five kinds of failure in its first seconds spent most of its budget
shrinking them, and a bug whose cases are rarer waited behind them.

So the rounds of the time budget only generate (Hypothesis's generate phase,
no shrink phase): a round ends at its first new failure, which is kept as it
was drawn (a `Finding` whose signature the next rounds treat as a pass, as
for a shrunk one), and Hypothesis saves its choices to the example database.
`Recording` wraps the database to note them, one `Group` per round. Once the
budget is spent, each group is shrunk in a round of its own (reuse and shrink
phases) whose database (`Group.database`) holds only the group's choices; the
shrunk failure replaces the drawn one. What the shrinking saves and deletes
goes to the user's database as it would have. A group whose shrinking ends
early (the watchdog's shrink budget, a known hang) keeps its failures as drawn;
one shrunk through `SHRINK_CALLS` calls keeps the smallest cases seen so far. The
shrinking after the budget takes at most as long as the budget, or `SHRINK_FLOOR`
seconds for a shorter one (`to_shrink`): under it, the calls decide, not the load.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase

from asgifuzz._campaign.findings import Finding
from asgifuzz._campaign.watchdog import Fault
from asgifuzz._oracles.verdict import InvariantViolation

__all__ = ["SHRINK_CALLS", "Current", "Group", "Recording", "to_shrink"]

#: The most calls to shrink one group through: past them, its failures are
#: the smallest cases seen so far. A count, not seconds: the shrunk case does
#: not depend on the machine's load. Most failures shrink in 100 to 700 calls,
#: most of it in the first ones.
SHRINK_CALLS = 250
#: The least wall time the shrinking after a budget gets (a budget of a second
#: would otherwise make the shrunk case depend on the machine's load).
SHRINK_FLOOR = 10.0


class Recording(ExampleDatabase):
    """``backing`` (or an in-memory database for none), noting the values
    saved since `take`."""

    def __init__(self, backing: ExampleDatabase | None) -> None:
        super().__init__()
        self.backing = backing if backing is not None else InMemoryExampleDatabase()
        self.saved: list[tuple[bytes, bytes]] = []

    def save(self, key: bytes, value: bytes) -> None:
        self.saved.append((key, value))
        self.backing.save(key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.backing.fetch(key)

    def delete(self, key: bytes, value: bytes) -> None:
        self.backing.delete(key, value)

    def take(self) -> tuple[bytes, list[bytes]] | None:
        """The test's key and the values saved under it since the last `take`
        (Hypothesis's other keys extend the test's: the shortest is its own)."""
        saved, self.saved = self.saved, []
        if not saved:
            return None
        key = min((k for k, _ in saved), key=len)
        return key, list(dict.fromkeys(v for k, v in saved if k == key))


@dataclass
class Group:
    """The failures one generation round raised: their signatures (`ident`)
    and the choices Hypothesis saved for them."""

    key: bytes
    values: list[bytes]
    idents: set[str] = field(default_factory=set)
    #: The watchdog's faults among them (hangs): it shrinks those with its
    #: shorter limit and its budget from the start.
    faults: list[Fault] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    #: When the shrinking after the budget must end (`time.perf_counter()`).
    until: float = math.inf
    #: While shrinking: the smallest failing case so far of each signature,
    #: and when the shrinking started.
    best: dict[str, InvariantViolation] = field(default_factory=dict)
    calls: int = 0

    @classmethod
    def of(
        cls,
        taken: tuple[bytes, list[bytes]],
        findings: Sequence[Finding],
        faults: list[Fault],
    ) -> Group:
        """The group of ``findings``, raised by the round that saved ``taken``."""
        idents, keys = {f.ident for f in findings}, {f.key for f in findings}
        return cls(*taken, idents=idents, faults=faults, keys=keys)

    def spent(self) -> bool:
        """Whether this group has been shrunk through `SHRINK_CALLS` runs
        (counted here, one a call), or the time for shrinking is over."""
        self.calls += 1
        return self.calls > SHRINK_CALLS or time.perf_counter() > self.until

    def database(self, backing: ExampleDatabase) -> ExampleDatabase:
        """A database that holds only this group's choices (under the test's
        secondary key, and nothing under its others), writing through to
        ``backing``."""
        return _Overlay(self, backing)


class _Overlay(ExampleDatabase):
    # The choices go under the test's secondary key: Hypothesis takes a case
    # it replays exactly from the test's own key for one it shrank already,
    # and does not shrink it again.
    def __init__(self, group: Group, backing: ExampleDatabase) -> None:
        super().__init__()
        self.local = InMemoryExampleDatabase()
        self.key, self.backing = group.key + b".secondary", backing
        for value in group.values:
            self.local.save(self.key, value)

    def save(self, key: bytes, value: bytes) -> None:
        self.local.save(key, value)
        self.backing.save(key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.local.fetch(key) if key == self.key else ()

    def delete(self, key: bytes, value: bytes) -> None:
        self.local.delete(key, value)
        self.backing.delete(key, value)


@dataclass
class Current:
    """The fuzz loop's current round: the group it shrinks (None: it
    generates), and the signatures it treats as passes."""

    group: Group | None = None
    skip: set[str] = field(default_factory=set)


#: Comma-separated failure keys: after the budget, shrink only the groups with
#: a finding of one of them (``benchmarks/time_to_bug.py`` sets it: what it
#: measures is over before any shrinking, and it needs only its bug's cases).
ONLY_ENV = "ASGIFUZZ_SHRINK_ONLY"


def to_shrink(groups: Sequence[Group], seconds: float) -> list[Group]:
    """The groups to shrink after the budget: all, or those ``ONLY_ENV`` names,
    within ``seconds`` from now (as long as the budget was, and at least
    `SHRINK_FLOOR`: a group the time cuts short keeps the smallest case so far,
    those after it as drawn)."""
    only = {k.strip() for k in os.environ.get(ONLY_ENV, "").split(",") if k.strip()}
    until = time.perf_counter() + max(seconds, SHRINK_FLOOR)
    chosen = [g for g in groups if not only or g.keys & only]
    for g in chosen:
        g.until = until
    return chosen
