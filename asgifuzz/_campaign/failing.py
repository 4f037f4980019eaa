"""The exception a failing case raises in the fuzz loop: one class per failure
signature, so that Hypothesis, which tells failures apart by exception type,
shrinks each distinct bug on its own."""

from __future__ import annotations

from asgifuzz._campaign.findings import ident
from asgifuzz._oracles.failures import Failure
from asgifuzz._oracles.verdict import InvariantViolation, violation_class
from asgifuzz.models import Case

__all__ = ["MAX_CLASSES", "CaseFailed", "failed"]


class CaseFailed(InvariantViolation):
    """A failing case in the fuzz loop, with its `Failure` (subclassed once per
    signature by `failed`)."""

    failure: Failure
    #: For Starlette's failure in a case with the user's layers: the case with
    #: each swapped for the built-in pass-through of its family.
    swapped: Case | None = None


#: The classes made so far, by signature. Bounded: past `MAX_CLASSES`
#: signatures, new ones share their key's class (Hypothesis then shrinks them
#: as one bug, and the findings are still told apart by signature).
_CLASSES: dict[str, type[CaseFailed]] = {}
MAX_CLASSES = 512


def failed(failure: Failure, case: Case, swapped: Case | None = None) -> CaseFailed:
    """The exception a failing case raises: of the class of its signature (and
    owner: Starlette's failure is told apart from the user's of one signature)."""
    name = (
        ident(failure.signature, swapped)
        if len(_CLASSES) < MAX_CLASSES
        else failure.key
    )
    cls = _CLASSES.get(name)
    if cls is None:
        base = violation_class(failure.key)
        cls = type(
            f"{base.__name__}_{len(_CLASSES)}",
            (CaseFailed, base),
            {
                "__module__": __name__,
                "__qualname__": f"{base.__name__}_{len(_CLASSES)}",
            },
        )
        _CLASSES[name] = cls
    alone = failure.headline.violation.invariant == "I10"
    exc = cls(
        [s.violation for s in failure.seen],
        case,
        "both" if alone else failure.backends[0],
    )
    exc.failure, exc.swapped = failure, swapped
    return exc
