"""Violations: which invariant broke, the evidence, and a key to tell bugs apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asgifuzz._errors import AsgiFuzzError

if TYPE_CHECKING:
    from asgifuzz.models import Case

INVARIANTS = {
    "I1": "a valid response or a clean end",
    "I2": "a valid ASGI message sequence",
    "I3": "the body as the client sent it",
    "I4": "no hang; streaming streams",
    "I5": "background tasks run once, after the response",
    "I6": "exceptions come out as themselves",
    "I7": "nothing leaks",
    "I8": "pass-through layers are transparent",
    "I9": "the disconnect reaches who waits for it",
    "I10": "asyncio and trio agree",
}


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with the evidence in ``message``.

    ``tag`` is a short, stable name for the kind of failure within the
    invariant (an exception type, a warning's object, a reader), so that two
    different bugs breaking the same invariant are reported apart.
    """

    invariant: str
    message: str
    tag: str = ""
    #: The innermost frames in the app under test (``pkg/module.py:function``)
    #: where an exception started, for the crash-state part of the signature.
    frames: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``invariant:tag``, the failure's identity for deduplication."""
        return f"{self.invariant}:{self.tag}" if self.tag else self.invariant

    @property
    def signature(self) -> str:
        """The key plus, where an exception was involved, its top frames in the
        app (in the spirit of ClusterFuzz's crash state)."""
        return self.key + ("@" + ";".join(self.frames) if self.frames else "")

    @property
    def title(self) -> str:
        return INVARIANTS[self.invariant]


class InvariantViolation(AsgiFuzzError, AssertionError):
    """A run broke one or more invariants.

    Subclassed once per invariant id (``I1`` ... ``I10``) so that Hypothesis, which
    tells distinct failures apart by exception type, shrinks and reports each
    invariant separately.
    """

    invariant = "I?"
    key = "I?"

    def __init__(self, violations: list[Violation], case: Case, backend: str) -> None:
        lines = [f"[{v.invariant} {v.title}] {v.message}" for v in violations]
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
        name = "".join(c for c in tag.title() if c.isalnum())
        cls = type(
            f"InvariantViolation{invariant}{name}",
            (InvariantViolation,),
            {"invariant": invariant, "key": key, "__module__": __name__},
        )
        _VIOLATION_CLASSES[key] = cls
        return cls
