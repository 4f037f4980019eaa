"""Invariant I8: pass-through layers are transparent (a case-level check: it
compares the run with a run of the same case without those layers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from asgifuzz._driver.outcome import Outcome
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case
from asgifuzz.models._parts import PASSTHROUGH_KINDS, Stack

_VIEW = ("status", "headers", "body", "complete", "escaped")
#: The most telling difference first: one bug, one key.
_TAGS = ("complete", "status", "escaped", "body", "headers")


def server_view(o: Outcome) -> tuple[object, ...]:
    """What the server saw of a run: status, headers, body, completeness, and
    the type of what escaped."""
    r = o.response
    escaped = None if o.escaped is None else type(o.escaped).__name__
    headers: Sequence[object] = sorted(r.headers)
    if o.case.app or any(la.family == "user" for la in o.case.stack.layers):
        # Policy: the user's code may stamp each response (request ids,
        # timings, dates), so only the header names must match.
        headers = sorted(name for name, _ in r.headers)
    return (r.status, headers, r.body, r.complete, escaped)


def without_passthrough(case: Case) -> Case | None:
    """``case`` without its pass-through layers, or None if I8 is not judged.

    Policy: only for clients that never hang up (a disconnect scheduled by the
    n-th ``receive()`` falls elsewhere once a layer calls ``receive()`` itself).
    """
    layers = case.stack.layers
    if case.client.disconnect != "never" or not any(
        la.kind in PASSTHROUGH_KINDS for la in layers
    ):
        return None
    kept = tuple(la for la in layers if la.kind not in PASSTHROUGH_KINDS)
    return replace(case, stack=Stack(layers=kept, mode=case.stack.mode))


def transparency(
    case: Case,
    outcome: Outcome,
    backend: str,
    run: Callable[[Case, str], Outcome],
) -> list[Violation]:
    """I8: ``outcome`` (of ``case`` on ``backend``) looks to the server as the
    case's run without its pass-through layers does (made with ``run``)."""
    bare = without_passthrough(case)
    if bare is None:
        return []
    with_, without = server_view(outcome), server_view(run(bare, backend))
    if with_ == without:
        return []
    differing = [
        (n, a, b) for n, a, b in zip(_VIEW, with_, without, strict=True) if a != b
    ]
    names = {n for n, _, _ in differing}
    tag = next(n for n in _TAGS if n in names)
    diffs = "; ".join(f"{n}: {a!r} vs {b!r}" for n, a, b in differing)
    return [
        Violation(
            "I8",
            "the server sees a different response with the pass-through layers than "
            f"without them ({diffs})",
            tag,
        )
    ]
