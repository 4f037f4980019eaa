"""Judging a case: every invariant, on each backend, and the two that compare runs.

I8 (transparency) runs the case again without its pass-through layers; I10
compares the verdicts of the backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.runner import run
from asgifuzz._oracles.checks import judge_outcome
from asgifuzz._oracles.violations import Violation, violation_class
from asgifuzz._types import BACKENDS
from asgifuzz.models import Case
from asgifuzz.models._parts import PASSTHROUGH_KINDS, Stack


def _server_view(o: Outcome) -> tuple[object, ...]:
    r = o.response
    escaped = None if o.escaped is None else type(o.escaped).__name__
    headers: Sequence[object] = sorted(r.headers)
    if o.case.app or any(la.family == "user" for la in o.case.stack.layers):
        # Policy: the user's code may stamp each response (request ids,
        # timings, dates), so only the header names must match.
        headers = sorted(name for name, _ in r.headers)
    return (r.status, headers, r.body, r.complete, escaped)


@dataclass
class Verdict:
    """The outcomes of a case on each backend and the invariants they broke."""

    case: Case
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    violations: dict[str, list[Violation]] = field(default_factory=dict)
    #: For a case with user middleware: the violations that the same case
    #: shows without the user's layers (not theirs: the rest of the stack's).
    elsewhere: dict[str, list[Violation]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(self.violations.values())

    def first(self) -> tuple[str, Violation] | None:
        """The most specific violation (lowest invariant number, I10 last)."""
        found = [(b, v) for b, vs in self.violations.items() for v in vs]
        found.sort(key=lambda bv: int(bv[1].invariant[1:]))
        return found[0] if found else None


def _transparency(case: Case, outcome: Outcome, backend: str) -> list[Violation]:
    layers = case.stack.layers
    if case.client.disconnect != "never" or not any(
        la.kind in PASSTHROUGH_KINDS for la in layers
    ):
        return []
    bare = replace(
        case,
        stack=Stack(
            layers=tuple(la for la in layers if la.kind not in PASSTHROUGH_KINDS),
            mode=case.stack.mode,
        ),
    )
    other = run(bare, backend)
    with_, without = _server_view(outcome), _server_view(other)
    if with_ == without:
        return []
    names = ("status", "headers", "body", "complete", "escaped")
    diffs = [
        f"{n}: {a!r} vs {b!r}"
        for n, a, b in zip(names, with_, without, strict=True)
        if a != b
    ]
    differing = {n for n, a, b in zip(names, with_, without, strict=True) if a != b}
    # Tag by the most telling difference: one bug, one key.
    tag = next(
        n
        for n in ("complete", "status", "escaped", "body", "headers")
        if n in differing
    )
    return [
        Violation(
            "I8",
            "the server sees a different response with the pass-through layers than "
            f"without them ({'; '.join(diffs)})",
            tag,
        )
    ]


def judge(case: Case, backends: tuple[str, ...] = BACKENDS) -> Verdict:
    """Run ``case`` on each backend and judge every invariant."""
    verdict = Verdict(case)
    for backend in backends:
        outcome = run(case, backend)
        violations = judge_outcome(outcome)
        violations += _transparency(case, outcome, backend)
        verdict.outcomes[backend] = outcome
        verdict.violations[backend] = violations
    if len(backends) > 1:
        keys = {b: sorted({v.key for v in vs}) for b, vs in verdict.violations.items()}
        if len({tuple(k) for k in keys.values()}) > 1:
            text = "; ".join(f"{b}: {k or 'no violation'}" for b, k in keys.items())
            verdict.violations["both"] = [
                Violation("I10", f"the backends disagree ({text})")
            ]
    if verdict.failed and any(la.family == "user" for la in case.stack.layers):
        _attribute(verdict, backends)
    return verdict


def _attribute(verdict: Verdict, backends: tuple[str, ...]) -> None:
    """Keep only the failures the user's layers cause: those the case does not
    show once they are taken out (the built-in layers and Starlette's endpoint
    then own them; a user's BaseHTTPMiddleware that triggers a Starlette bug
    keeps it, since the bug needs their layer)."""
    case = verdict.case
    kept = tuple(la for la in case.stack.layers if la.family != "user")
    without = judge(replace(case, stack=Stack(kept, case.stack.mode)), backends)
    for backend, violations in verdict.violations.items():
        theirs = {v.key for v in without.violations.get(backend, [])}
        verdict.elsewhere[backend] = [v for v in violations if v.key in theirs]
        verdict.violations[backend] = [v for v in violations if v.key not in theirs]


#: The backends `check` uses when it is given none: set by the pytest plugin
#: for a test parametrized by anyio's ``anyio_backend``.
current_backends: ContextVar[tuple[str, ...]] = ContextVar(
    "asgifuzz_backends", default=BACKENDS
)


def check(case: Case, backends: tuple[str, ...] | None = None) -> Verdict:
    """Judge ``case`` and raise `InvariantViolation` (a subclass per invariant) if it fails.

    ``backends`` defaults to both (and then I10 compares them), or, in a test
    made by `asgifuzz.given_cases`, to the test's ``anyio_backend``.
    """
    __tracebackhide__ = True
    verdict = judge(case, backends or current_backends.get())
    first = verdict.first()
    if first is not None:
        backend, violation = first
        all_violations = [v for vs in verdict.violations.values() for v in vs]
        raise violation_class(violation.key)(all_violations, case, backend)
    return verdict
