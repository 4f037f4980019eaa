"""The exception a failing case raises in the fuzz loop: one class per failure
signature, so that Hypothesis, which tells failures apart by exception type,
shrinks each distinct bug on its own."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from asgifuzz._campaign.findings import Finding, ident
from asgifuzz._oracles.failures import Failure
from asgifuzz._oracles.verdict import InvariantViolation, violation_class
from asgifuzz.models import Case

__all__ = ["MAX_CLASSES", "CaseFailed", "Masking", "failed"]


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


@dataclass
class Masking:
    """Which signatures the loop kept for themselves and which only because a
    reported bug masked them (`keep`)."""

    #: Idents of failures kept for their own headline.
    natural: set[str] = field(default_factory=set)
    #: Idents of failures kept for a signature that was not their headline.
    masked: set[str] = field(default_factory=set)
    #: Masked idents whose shrunk case was still a reported bug's: not kept
    #: for a masked signature again.
    symptoms: set[str] = field(default_factory=set)
    #: The idents of the signatures the findings so far show besides their
    #: headlines, and that headline none (`listing`).
    listed: set[str] = field(default_factory=set)

    def listing(self, findings: Iterable[Finding]) -> None:
        """The findings so far: a signature among their keys (not a headline
        of one: `keep`'s ``skip`` decides those) is not kept for itself behind
        another, since it is listed with that one already."""
        findings = list(findings)
        self.listed = {
            ident(s, f.swapped) for f in findings for s in f.signatures[1:]
        } - {f.ident for f in findings}

    def keep(
        self, failure: Failure | None, swapped: Case | None, skip: Collection[str]
    ) -> Failure | None:
        """What the loop keeps of a case's ``failure``: itself when its
        headline's signature is not in ``skip`` (reported, or passed this
        round), or was kept only for masked cases so far; else the failure
        headlined by its first other signature not in ``skip``, `symptoms`
        or `listed` (a second bug that a reported one masks: K4's leak shows
        before K3's background task that never runs); else None."""
        if failure is None:
            return None
        head = ident(failure.signature, swapped)
        if head not in skip or (head in self.masked and head not in self.natural):
            return failure
        for signature in failure.signatures[1:]:
            name = ident(signature, swapped)
            if name in skip or name in self.symptoms or name in self.listed:
                continue
            return failure.headed(signature)
        return None

    def found(self, failure: Failure, swapped: Case | None) -> None:
        """Note a failure the loop kept."""
        name = ident(failure.signature, swapped)
        (self.masked if failure.masked else self.natural).add(name)

    def symptom(
        self, failure: Failure, swapped: Case | None, reported: Collection[str]
    ) -> bool:
        """Whether a shrunk ``failure`` kept for a masked signature is still
        headlined by a reported bug (one cause: that bug's keys list it)."""
        return bool(failure.masked) and ident(failure.masked, swapped) in reported

    def drop(self, name: str) -> bool:
        """A masked ident whose shrunk case was a symptom: whether its finding
        goes too (no case showed it as its own headline)."""
        self.symptoms.add(name)
        return name not in self.natural
