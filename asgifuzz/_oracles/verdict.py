"""Judging a case: every invariant, on each backend, and the two that compare runs.

I8 (transparency) runs the case again without its pass-through layers; I10
compares the verdicts of the backends. `check` raises an `InvariantViolation`
subclass per failure key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.runner import run
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._oracles.agreement import agreement
from asgifuzz._oracles.facts import inside
from asgifuzz._oracles.registry import judge_outcome, rank, title
from asgifuzz._oracles.transparency import transparency
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets.specs import declarations, middleware_target
from asgifuzz._types import BACKENDS
from asgifuzz.models import Case
from asgifuzz.models._parts import Layer, Stack


@dataclass
class Verdict:
    """The outcomes of a case on each backend and the invariants they broke."""

    case: Case
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    violations: dict[str, list[Violation]] = field(default_factory=dict)
    #: For a case with user middleware: the violations that the same case
    #: shows without the user's layers (not theirs: the rest of the stack's).
    elsewhere: dict[str, list[Violation]] = field(default_factory=dict)
    #: The case those were judged on: each user layer swapped for the built-in
    #: pass-through of its family (`stand_ins`); None when none was judged.
    swapped: Case | None = None

    @property
    def failed(self) -> bool:
        return any(self.violations.values())

    @property
    def upstream(self) -> bool:
        """Whether the case shows Starlette's failures (`elsewhere`)."""
        return any(self.elsewhere.values())

    def first(self) -> tuple[str, Violation] | None:
        """The most specific violation (lowest in the registry's rank, I10 last)."""
        found = [(b, v) for b, vs in self.violations.items() for v in vs]
        found.sort(key=lambda bv: rank(bv[1].invariant))
        return found[0] if found else None


def judge(case: Case, backends: tuple[str, ...] = BACKENDS) -> Verdict:
    """Run ``case`` on each backend and judge every invariant."""
    verdict = Verdict(case)
    for backend in backends:
        outcome = run(case, backend)
        violations = judge_outcome(outcome)
        if case.scope == "http":
            violations += transparency(case, outcome, backend, run, judge_outcome)
        verdict.outcomes[backend] = outcome
        verdict.violations[backend] = violations
    disagree = agreement(verdict.violations)
    if case.scope == "websocket":
        disagree = [replace(v, invariant="W5") for v in disagree]
    if disagree:
        verdict.violations["both"] = disagree
    if (
        verdict.failed
        and not case.app
        and any(la.family == "user" for la in case.stack.layers)
    ):
        _attribute(verdict, backends)
    return verdict


def stand_ins(
    case: Case, holding: frozenset[int] = frozenset(), *, encoders: bool = True
) -> Case:
    """``case`` with each user layer swapped for the built-in pass-through of its
    family: `bhm.passthrough` for a `BaseHTTPMiddleware`, else `asgi.passthrough`;
    a layer of ``holding`` (one that held the response back, `_holding`) for the
    built-in layer of its family that buffers the body, ``replace_body``; a
    layer that declares it encodes (``encodes``) for the family's encoder,
    ``encode``, whose codings are those declared (`asgifuzz.models._encode`:
    an encoder makes a body of its own, even of an empty one); with
    ``encoders=False`` such a layer is swapped as any other."""
    declared = declarations(case)
    layers = tuple(
        _stand_in(la, i in holding, declared[i].encodes if encoders else ())
        if la.family == "user"
        else la
        for i, la in enumerate(case.stack.layers)
    )
    return replace(case, stack=Stack(layers, case.stack.mode))


def _stand_in(layer: Layer, holds: bool, codings: tuple[str, ...]) -> Layer:
    family = "bhm." if middleware_target(layer.behaviour).base_http else "asgi."
    if codings:
        return Layer(family + "encode", options={"codings": ",".join(codings)})
    return Layer(family + ("replace_body" if holds else "passthrough"))


def _holding(verdict: Verdict) -> frozenset[int]:
    """The user layers that held the response back on some backend: they sent
    ``http.response.start`` only after the layers below had sent body bytes
    (a buffer, a compressor), so the timing below them is not a pass-through's."""
    held = set()
    for outcome in verdict.outcomes.values():
        for i, layer in enumerate(verdict.case.stack.layers):
            if layer.family != "user":
                continue
            inner = inside(outcome, i)
            ticks = {inner - 1: -1, inner: -1}  # its start's; the first body's below
            for e in outcome.recorder.events:
                if e.kind == "send" and e.where in ticks and ticks[e.where] < 0:
                    kind = (e.message or {}).get("type")
                    wanted = _START if e.where == inner - 1 else _BODY
                    if kind == wanted:
                        ticks[e.where] = e.tick
            if 0 <= ticks[inner] < ticks[inner - 1]:
                held.add(i)
    return frozenset(held)


_START, _BODY = "http.response.start", "http.response.body"


def _attribute(verdict: Verdict, backends: tuple[str, ...]) -> None:
    """Keep only the failures the user's layers cause: those the case does not
    show the same way (same key and signature, on the same backend) once each
    is swapped for the built-in pass-through of its family (`stand_ins`).

    What the swapped case, all Starlette and built-in code, shows the same way
    is Starlette's: a pass-through `BaseHTTPMiddleware` of Starlette's own
    triggers it too, so it goes to ``elsewhere`` (labelled upstream by the fuzz
    loop, with ``swapped`` as its Starlette-only case). A case with the user's
    app is not attributed: the app stays in the swapped case, and it is theirs.

    A user layer that held the response back (`_holding`) changes the timing
    below it as no pass-through does, and a failure of Starlette's then shows
    another way (Starlette's failed stream that looks complete, I8:complete+,
    is a 200 once a buffer above has sent it whole: I8:status). When the
    pass-through swap leaves failures the user's, such layers are swapped for
    the built-in buffering layer of their family instead. A layer that declares
    it encodes is first swapped for the built-in encoder of its family (a
    compressor gives even an empty body a stream of its own, and a bug of
    Starlette's above it may need those bytes); when that leaves failures the
    user's, it is swapped as any other layer too. Of the swapped cases, the one
    that shows the most failures the same way is kept (the first, of equals).
    """
    verdict.swapped = stand_ins(verdict.case)
    theirs = _shown(verdict.swapped, backends)
    if _left(verdict, theirs):
        tried = [verdict.swapped]
        for swapped in _others(verdict):
            if swapped in tried:
                continue
            tried.append(swapped)
            shown = _shown(swapped, backends)
            if _explained(verdict, shown) > _explained(verdict, theirs):
                verdict.swapped, theirs = swapped, shown
    for backend, violations in verdict.violations.items():
        same = theirs.get(backend, set())
        verdict.elsewhere[backend] = [
            v for v in violations if (v.key, v.signature) in same
        ]
        verdict.violations[backend] = [
            v for v in violations if (v.key, v.signature) not in same
        ]


def _others(verdict: Verdict) -> Iterator[Case]:
    """The other swapped cases, in order (`_holding` is read only if reached)."""
    yield stand_ins(verdict.case, encoders=False)
    yield stand_ins(verdict.case, _holding(verdict), encoders=False)


def _shown(case: Case, backends: tuple[str, ...]) -> dict[str, set[tuple[str, str]]]:
    """The failures ``case`` shows, by backend, as (key, signature)."""
    verdict = judge(case, backends)
    return {
        b: {(v.key, v.signature) for v in vs} for b, vs in verdict.violations.items()
    }


def _explained(verdict: Verdict, theirs: dict[str, set[tuple[str, str]]]) -> int:
    """How many of the verdict's failures ``theirs`` shows the same way."""
    return sum(
        (v.key, v.signature) in theirs.get(b, set())
        for b, vs in verdict.violations.items()
        for v in vs
    )


def _left(verdict: Verdict, theirs: dict[str, set[tuple[str, str]]]) -> bool:
    """Whether some failure of the verdict is not shown the same way in ``theirs``."""
    return _explained(verdict, theirs) < sum(map(len, verdict.violations.values()))


#: The backends `check` uses when it is given none: set by the pytest plugin
#: for a test parametrized by anyio's ``anyio_backend``.
current_backends: ContextVar[tuple[str, ...]] = ContextVar(
    "asgifuzz_backends", default=BACKENDS
)


#: Called by `check` with the verdict of each case that shows Starlette's
#: failures (`Verdict.elsewhere`), which do not fail the check: set by the
#: pytest plugin, which reports them labelled upstream (Starlette).
upstream_seen: ContextVar[Callable[[Verdict], None] | None] = ContextVar(
    "asgifuzz_upstream_seen", default=None
)


def check(case: Case, backends: tuple[str, ...] | None = None) -> Verdict:
    """Judge ``case`` and raise `InvariantViolation` (a subclass per invariant) if it fails.

    ``backends`` defaults to both (and then I10 compares them), or, in a test
    made by `asgifuzz.given_cases`, to the test's ``anyio_backend``. Only the
    failures of the user's layers raise: what the case shows the same way with
    each of them swapped for Starlette's pass-through is Starlette's
    (`Verdict.elsewhere`), kept in the verdict (and reported by the plugin).
    """
    __tracebackhide__ = True
    verdict = judge(case, backends or current_backends.get())
    seen = upstream_seen.get()
    if seen is not None and verdict.upstream:
        seen(verdict)
    first = verdict.first()
    if first is not None:
        backend, violation = first
        all_violations = [v for vs in verdict.violations.values() for v in vs]
        raise violation_class(violation.key)(all_violations, case, backend)
    return verdict


class InvariantViolation(AsgiFuzzError, AssertionError):
    """A run broke one or more invariants.

    Subclassed once per invariant id (``I1`` ... ``I11``) so that Hypothesis, which
    tells distinct failures apart by exception type, shrinks and reports each
    invariant separately.
    """

    invariant = "I?"
    key = "I?"

    def __init__(self, violations: list[Violation], case: Case, backend: str) -> None:
        lines = [
            f"[{v.invariant} {title(v.invariant)}] {v.message}" for v in violations
        ]
        super().__init__(f"on {backend}:\n" + "\n".join(lines))
        self.violations = violations
        self.case = case
        self.backend = backend


_VIOLATION_CLASSES: dict[str, type[InvariantViolation]] = {}


def violation_class(key: str) -> type[InvariantViolation]:
    """The `InvariantViolation` subclass for one failure key, ``I<n>[:tag]`` (cached)."""
    try:
        return _VIOLATION_CLASSES[key]
    except KeyError:
        invariant, _, tag = key.partition(":")
        # A direction (I8's ``complete+``, ``complete-``) is part of the name.
        suffix = {"+": "More", "-": "Less"}.get(tag[-1:], "")
        base = tag[:-1] if suffix else tag
        name = "".join(c for c in base.title() if c.isalnum()) + suffix
        cls = type(
            f"InvariantViolation{invariant}{name}",
            (InvariantViolation,),
            {"invariant": invariant, "key": key, "__module__": __name__},
        )
        _VIOLATION_CLASSES[key] = cls
        return cls
