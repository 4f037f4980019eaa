"""One case's failure: its violations on every backend grouped as one root cause.

A case that breaks several invariants usually shows one bug several ways: an
``IndexError`` in a layer is ``I1:IndexError`` (nobody's model raised it),
``I6:swallowed`` (the endpoint's exception did not come out) and ``I8:escaped``
(something else escapes than without the pass-through layers). `failure_of`
makes them one `Failure`: every key listed, the first by invariant rank the
headline, whose signature (`Violation.signature`) names the failure. The
disagreement of the backends (I10) is an attribute of it (``seen on asyncio
only``), not a failure of its own, unless nothing else failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asgifuzz._oracles.registry import rank
from asgifuzz._oracles.violations import Violation

#: The pseudo-backend under which `judge` files the case-level I10.
BOTH = "both"


@dataclass(frozen=True)
class Seen:
    """One distinct violation and the backends that showed it."""

    violation: Violation
    backends: tuple[str, ...]

    def line(self) -> str:
        """``[key] message (on asyncio and trio)``: each message once."""
        return f"[{self.violation.key}] {self.violation.message} (on {_names(self.backends)})"


@dataclass(frozen=True)
class Failure:
    """What one case broke, as one finding: the violations (each with the
    backends that showed it), headline first, then by invariant rank."""

    seen: tuple[Seen, ...]
    #: The backends the case ran on.
    ran_on: tuple[str, ...]
    #: For a failure headlined by another of its signatures than its own
    #: headline's (`headed`): that headline's signature, else "".
    masked: str = ""

    def headed(self, signature: str) -> Failure:
        """This failure headlined by ``signature`` (one of `signatures`): its
        violations of that signature first, the others after in rank order,
        with ``masked`` naming the headline it had."""
        first = tuple(s for s in self.seen if s.violation.signature == signature)
        rest = tuple(s for s in self.seen if s.violation.signature != signature)
        return Failure((*first, *rest), self.ran_on, masked=self.signature)

    @property
    def headline(self) -> Seen:
        return self.seen[0]

    @property
    def key(self) -> str:
        """The headline's key (``I1:IndexError``)."""
        return self.headline.violation.key

    @property
    def signature(self) -> str:
        """The headline's signature: what tells this failure from others."""
        return self.headline.violation.signature

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key the case showed, headline first, then by invariant rank."""
        return tuple(dict.fromkeys(s.violation.key for s in self.seen))

    @property
    def signatures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.violation.signature for s in self.seen))

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends that showed the headline's signature (whatever their
        messages said; all of them for I10 alone), in the order they ran."""
        shown = {
            b
            for s in self.seen
            if s.violation.signature == self.signature
            for b in s.backends
        }
        return tuple(b for b in self.ran_on if b in shown)

    @property
    def seen_on(self) -> str:
        """``asyncio only``, ``asyncio and trio``, or ``trio`` (the only one run)."""
        return seen_on(self.backends, self.ran_on)

    @property
    def messages(self) -> list[str]:
        """One line per distinct message, naming its backends once."""
        return [s.line() for s in self.seen]


def seen_on(backends: Sequence[str], ran_on: Sequence[str]) -> str:
    """How a finding's backends read: ``"asyncio only"`` when the case ran on
    more backends than showed it, else their names."""
    if len(ran_on) > 1 and len(backends) == 1:
        return f"{backends[0]} only"
    return _names(backends)


def _names(backends: Sequence[str]) -> str:
    return " and ".join(backends)


def failure_of(
    violations: Mapping[str, Sequence[Violation]], ran_on: Sequence[str]
) -> Failure | None:
    """The failure of a case from its violations per backend (`Verdict.violations`,
    I10 under ``"both"``), or None when it broke nothing.

    Violations equal on several backends are one `Seen`. The headline is the
    first by `rank`, then in the order the checks reported them (the backends'
    order), and I10 is dropped when another violation explains it.
    """
    ran_on = tuple(ran_on)
    order: dict[Violation, list[str]] = {}
    for backend in ran_on:
        for v in violations.get(backend, ()):
            order.setdefault(v, []).append(backend)
    if not order:
        for v in violations.get(BOTH, ()):
            order.setdefault(v, list(ran_on))
    if not order:
        return None
    ranked = sorted(order.items(), key=lambda item: rank(item[0].invariant))
    return Failure(tuple(Seen(v, tuple(bs)) for v, bs in ranked), ran_on)


def short_signature(signature: str) -> str:
    """A signature for one line of progress: the frame's function without its
    file (``I1:IndexError@Auth.dispatch``)."""
    key, _, frame = signature.partition("@")
    return f"{key}@{frame.rpartition(':')[2]}" if frame else key
