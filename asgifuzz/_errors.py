"""The exception hierarchy: one root, each subclass also in its builtin category.

    AsgiFuzzError
    ├── CaseFormatError (ValueError)      a case or corpus file breaks the format
    ├── UsageError (ValueError)           a bad option, spec or argument
    └── InvariantViolation (AssertionError)   a run broke invariants; one subclass
                                              per failure key (asgifuzz._oracles.verdict)
    ModelError (Exception)                what a model layer raises on purpose

`InvariantViolation` lives beside the `Violation` records it carries, so that
this module imports nothing of asgifuzz and everything may import it.
"""

from __future__ import annotations


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
