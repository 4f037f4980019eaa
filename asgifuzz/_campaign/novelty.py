"""Guidance: how new a run's behaviour is, for Hypothesis's ``target()``.

A feature is something a run did that a cheap look at its transcript sees:
the shape of the message sequence at each boundary (the message types in
order, with ``more_body``, the exceptions and the return, repeats folded),
which boundaries a cancellation crossed, which exception types crossed
which boundaries. `Novelty.score` is the number of features no earlier run of
the campaign showed; fed to ``hypothesis.target``, it makes Hypothesis's
target phase mutate the cases that did something new (coverage-guided
fuzzing's idea, with behaviour for coverage).

Measured against no guidance (``benchmarks/points.py --guidance``, README:
*How the search works*), it helped on one known bug and hurt on another, so
the fuzz loop does not use it; it stays for that benchmark, to measure again.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgifuzz._driver.outcome import Outcome

__all__ = ["Novelty", "features"]

#: The exception types of a cancellation, on asyncio and trio.
CANCELLED = ("CancelledError", "Cancelled")

Feature = tuple[str, int, str]


def _token(kind: str, message: dict[str, object] | None, exc_type: str) -> str:
    if kind in ("receive", "send") and message is not None:
        more = "+" if message.get("more_body") else ""
        return f"{kind[0]}:{str(message.get('type', '?')).removeprefix('http.')}{more}"
    return f"x:{exc_type}" if kind == "raise" else kind


def features(outcome: Outcome) -> set[Feature]:
    """The features of one run (see the module's docstring)."""
    shapes: dict[int, list[str]] = {}
    found: set[Feature] = set()
    for event in outcome.recorder.events:
        if event.where < 0:
            continue
        token = _token(event.kind, event.message, event.exc_type)
        shape = shapes.setdefault(event.where, [])
        if not shape or shape[-1] != token:
            shape.append(token)
        if event.kind == "raise":
            found.add(("crossed", event.where, event.exc_type))
            if event.exc_type in CANCELLED:
                found.add(("cancelled", event.where, ""))
    found.update(("shape", where, " ".join(s)) for where, s in shapes.items())
    return found


class Novelty:
    """The features seen so far in a campaign, and each run's count of new ones."""

    def __init__(self) -> None:
        self.seen: set[Feature] = set()

    def score(self, outcomes: Iterable[Outcome]) -> float:
        """How many features of ``outcomes`` (one case's runs) are new; they
        count as seen from now on."""
        new: set[Feature] = set()
        for outcome in outcomes:
            new |= features(outcome)
        new -= self.seen
        self.seen |= new
        return float(len(new))
