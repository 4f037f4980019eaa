"""The exception hierarchy: one root, each subclass also in its builtin category."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgifuzz._violations import Violation
    from asgifuzz.models import Case


class AsgiFuzzError(Exception):
    """Root of every error asgifuzz raises on purpose."""


class CaseFormatError(AsgiFuzzError, ValueError):
    """A case (JSON or Python data) does not follow the case format.

    The message names the field, the value, the rule and the fix.
    """


class UsageError(AsgiFuzzError, ValueError):
    """A command-line option or API argument is invalid."""


class ModelError(Exception):
    """The exception a model layer or endpoint raises on purpose.

    User code never raises it, so the oracles can tell "an exception the app was
    told to raise" from "an exception the framework made up". ``origin`` names the
    model that raised it, e.g. ``"endpoint"`` or ``"layer 1 (bhm.raise_before)"``.
    """

    def __init__(self, origin: str) -> None:
        super().__init__(f"raised on purpose by {origin}")
        self.origin = origin


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
