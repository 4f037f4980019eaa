"""Invariant I10: asyncio and trio agree (a case-level check: it reads the
verdicts of every other invariant on each backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from asgifuzz._oracles.violations import Violation


def agreement(violations: Mapping[str, Sequence[Violation]]) -> list[Violation]:
    """I10: each backend broke the same invariants, with the same keys."""
    if len(violations) < 2:
        return []
    keys = {b: sorted({v.key for v in vs}) for b, vs in violations.items()}
    if len({tuple(k) for k in keys.values()}) == 1:
        return []
    text = "; ".join(f"{b}: {k or 'no violation'}" for b, k in keys.items())
    return [Violation("I10", f"the backends disagree ({text})")]
