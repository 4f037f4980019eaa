"""What a fuzz run found: one `Finding` per distinct failure, and the run's report.

A finding is one root cause, not one key (README, "How findings are grouped"):
its ``signature`` is the headline violation's (`Violation.signature`: the key,
plus the innermost frame of the app's code where an exception was raised), and
``keys`` lists every key its shrunk case showed. Findings merge when their
signatures are equal (`merge_findings`: across rounds and across workers, the
smallest case kept); two findings may share a key. Findings whose signatures
differ but that match one known bug (one corpus entry, or entries that share
a ``cause``) are one finding too: the first seen, with the others in ``also``.

A finding is also labelled by its **owner** (README, "How findings are grouped
and labelled"): in a stack with the user's layers, the shrunk case was judged
again with each of them swapped for the built-in pass-through of its family
(`asgifuzz._oracles.verdict.stand_ins`); a failure the swapped case shows the
same way is Starlette's (``upstream-starlette``, with the swapped case, all
Starlette and built-in code, as ``swapped``), any other is the user's
(``user``). A case without the user's code is Starlette's by construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgifuzz._campaign.misconfig import Misconfiguration
from asgifuzz._corpus.entries import case_size
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._oracles.failures import Failure, failure_of
from asgifuzz._oracles.verdict import Verdict
from asgifuzz.models import Case, case_to_data

#: The labels of a finding (``Finding.status``).
NEW, KNOWN = "new", "known-upstream"
#: Whose a finding is (``Finding.owner``).
USER, UPSTREAM = "user", "upstream-starlette"


def user_code(case: Case) -> bool:
    """Whether ``case`` runs the user's code (their layers or their app)."""
    return bool(case.app) or any(la.family == "user" for la in case.stack.layers)


def attributed(
    verdict: Verdict, backends: tuple[str, ...]
) -> tuple[Failure | None, Case | None]:
    """A judged case's failure, and the swapped case when it is Starlette's.

    The user's failures come first (`Verdict.violations`); only a case that
    shows none of theirs is a finding of what its swapped case shows the same
    way (`Verdict.elsewhere`), which is then returned with it.
    """
    failure = failure_of(verdict.violations, backends)
    if failure is not None or verdict.swapped is None:
        return failure, None
    failure = failure_of(verdict.elsewhere, backends)
    return failure, None if failure is None else verdict.swapped


def ident(signature: str, swapped: Case | None) -> str:
    """What tells findings apart: the signature, and whose the failure is (a
    user's layer hiding a disconnect is not Starlette's ``I9:endpoint``)."""
    return signature if swapped is None else f"upstream:{signature}"


@dataclass
class Finding:
    """One distinct failure, with its shrunk case.

    ``key`` is the headline key (the first by invariant rank), ``backend`` the
    first backend that showed it (``both`` for a disagreement of the backends
    with no other failure); ``keys``, ``backends`` and ``seen_on`` default to
    those alone.
    """

    key: str
    backend: str
    messages: list[str]
    case: Case
    flaky: bool = False
    signature: str = ""
    #: Every key the shrunk case showed, headline first; and their signatures.
    keys: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    #: The backends that showed the headline, and how that reads
    #: (``asyncio only``: the I10 of the case, as an attribute).
    backends: tuple[str, ...] = ()
    seen_on: str = ""
    #: ``new``, or ``known-upstream`` when the signature matches a corpus entry
    #: of a known upstream bug (``upstream``: its link; ``entry``: its file).
    status: str = NEW
    upstream: str = ""
    entry: str = ""
    #: Which of ``signatures`` matched the entry (the headline's, or another's).
    matched: str = ""
    #: The known bug it matched (`KnownBug.bug`: the entry, or the cause
    #: several entries share); "": none.
    bug: str = ""
    #: The other findings of the same known bug, merged into this one.
    also: list[Finding] = field(default_factory=list)
    #: Seconds into the run and cases run when the failure was first seen.
    first_seen_s: float = 0.0
    first_seen_cases: int = 0
    #: The corpus entry written for it (set by the campaign; None: not saved).
    saved: Path | None = None
    #: For a fault (hang, crash, memory): the stack of every thread when caught.
    stack: str = ""
    #: For Starlette's failure in a case with the user's layers: the case with
    #: each swapped for the built-in pass-through of its family, which fails
    #: the same way (what `asgifuzz repro` writes a script for).
    swapped: Case | None = None

    def __post_init__(self) -> None:
        self.signature = self.signature or self.key
        self.keys = self.keys or (self.key,)
        self.signatures = self.signatures or (self.signature,)
        self.backends = self.backends or (self.backend,)
        self.seen_on = self.seen_on or " and ".join(self.backends)

    @classmethod
    def of(
        cls,
        failure: Failure,
        case: Case,
        *,
        flaky: bool = False,
        first_seen: tuple[float, int] = (0.0, 0),
        stack: str = "",
        swapped: Case | None = None,
    ) -> Finding:
        """The finding of a case's `Failure`."""
        alone = failure.headline.violation.invariant == "I10"
        return cls(
            key=failure.key,
            backend="both" if alone else failure.backends[0],
            messages=failure.messages,
            case=case,
            flaky=flaky,
            signature=failure.signature,
            keys=failure.keys,
            signatures=failure.signatures,
            backends=failure.backends,
            seen_on=failure.seen_on,
            first_seen_s=first_seen[0],
            first_seen_cases=first_seen[1],
            stack=stack,
            swapped=swapped,
        )

    @property
    def owner(self) -> str:
        """``upstream-starlette`` for a case without the user's code or one whose
        swapped case fails the same way, else ``user``."""
        if self.swapped is not None or not user_code(self.case):
            return UPSTREAM
        return USER

    @property
    def attributed(self) -> bool:
        """Whether the finding's case runs the user's code (and so has an owner
        worth showing: a case of built-in code only is Starlette's)."""
        return user_code(self.case)

    @property
    def ident(self) -> str:
        """The signature and whose it is (`ident`): what findings merge by."""
        return ident(self.signature, self.swapped)

    def describe_owner(self) -> str:
        """``yours`` or ``upstream (Starlette)``."""
        return "yours" if self.owner == USER else "upstream (Starlette)"

    def label(self, known: KnownBugs | None, *, masked: str = "") -> None:
        """Set ``status``, ``upstream``, ``entry`` and ``matched`` from the
        corpus entry one of the finding's signatures matches, if any (the
        headline's first; matched on the swapped case for Starlette's failure
        in a case with the user's layers). Not by ``masked``: the reported
        headline a failure kept for another signature had (`failing.Masking`),
        whose entry is not this finding's bug."""
        case = self.swapped or self.case
        signatures = [s for s in self.signatures if s != masked]
        found = known.match_any(signatures, case) if known else None
        if found is not None:
            bug, self.matched = found
            self.status, self.upstream, self.entry = bug.label, bug.upstream, bug.entry
            self.bug = bug.bug

    def describe_status(self) -> str:
        """``new``, ``new (corpus entry X)`` or ``known upstream (URL or
        entry)``, naming the signature that matched when not the headline's
        (``known upstream (URL, by I9:endpoint)``)."""
        by = f", by {self.matched}" if self.matched not in ("", self.signature) else ""
        if self.status == KNOWN:
            return f"known upstream ({self.upstream or self.entry}{by})"
        return f"new (corpus entry {self.entry}{by})" if self.entry else "new"

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": self.key,
            "keys": list(self.keys),
            "signature": self.signature,
            "status": self.status,
            "owner": self.owner,
        }
        if self.swapped is not None:
            data["swapped"] = case_to_data(self.swapped)
        if self.status == KNOWN:
            data["upstream"] = self.upstream
        if self.entry:
            data["entry"] = self.entry
            data["matched"] = self.matched
        data |= {
            "backend": self.backend,
            "backends": list(self.backends),
            "seen_on": self.seen_on,
            "messages": self.messages,
            "flaky": self.flaky,
            "first_seen_s": round(self.first_seen_s, 3),
            "first_seen_cases": self.first_seen_cases,
            "case": case_to_data(self.case),
        }
        if self.saved is not None:
            data["saved"] = str(self.saved)
        if self.stack:
            data["stack"] = self.stack
        if self.also:
            data["also"] = [f.to_data() for f in self.also]
        return data

    def describe_also(self) -> list[str]:
        """One line per merged finding of the same known bug."""
        return [
            f"also seen as {f.key} ({f.describe_status()}), first seen after "
            f"{f.first_seen_s:.1f}s / {f.first_seen_cases} cases: the same known "
            f"bug ({self.bug})"
            for f in self.also
        ]


def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per signature and owner (`Finding.ident`): the smallest case
    (`case_size`), seen first when the first of them was; in the order they
    were first seen. Then one finding per known bug and owner: the first seen
    keeps the others in ``also``."""
    best: dict[str, Finding] = {}
    for finding in findings:
        rival = best.get(finding.ident)
        if rival is None:
            best[finding.ident] = finding
            continue
        early = min(finding, rival, key=lambda f: f.first_seen_s)
        seen = early.first_seen_s, early.first_seen_cases
        if case_size(finding.case) < case_size(rival.case):
            finding.also, rival.also = [*rival.also, *finding.also], []
            best[finding.ident] = rival = finding
        rival.first_seen_s, rival.first_seen_cases = seen
    merged: dict[tuple[str, str], Finding] = {}
    out = []
    for finding in sorted(best.values(), key=lambda f: f.first_seen_s):
        first = merged.setdefault(
            (finding.owner, finding.bug or finding.ident), finding
        )
        if first is finding:
            out.append(finding)
            continue
        have = {f.ident for f in (first, *first.also)}
        first.also += [f for f in (finding, *finding.also) if f.ident not in have]
        finding.also = []
    return out


def idents(findings: Iterable[Finding]) -> set[str]:
    """The idents of ``findings`` and of the findings merged into them."""
    return {g.ident for f in findings for g in (f, *f.also)}


#: The choices of ``--fail-on``, each failing on fewer findings than the last.
FAIL_ON = ("any", "new", "user")


def failing(finding: Finding, fail_on: str) -> bool:
    """Whether ``finding`` fails the run: with ``--fail-on any``, every one;
    with ``new``, one not labelled known-upstream by the corpus; with ``user``,
    a new one that is also the user's (not labelled upstream (Starlette))."""
    if fail_on == "any":
        return True
    return finding.status == NEW and (fail_on == "new" or finding.owner == USER)


@dataclass
class FuzzReport:
    """What a fuzz run did and found."""

    backends: tuple[str, ...]
    #: Cases Hypothesis generated (each run on every backend; its shrinking
    #: and replays are counted apart, in ``shrink_runs`` and ``replay_runs``).
    cases: int = 0
    #: Runs of generated cases again, with the client gone at one of their
    #: disconnect points (`asgifuzz._campaign.points`).
    point_runs: int = 0
    #: Runs while shrinking failures (the disconnect points of those included),
    #: and of the example database's saved cases.
    shrink_runs: int = 0
    replay_runs: int = 0
    elapsed: float = 0.0
    #: Seconds spent generating (drawing, running and judging the generated
    #: cases and their disconnect points), not shrinking: what cases/s divides by.
    generation_s: float = 0.0
    #: ``backend:kind`` -> how many generated cases ended that way there.
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: Stopped early by Ctrl-C (or by the parent of a worker).
    interrupted: bool = False
    #: The signal that stopped it (SIGINT or SIGTERM; 0: none or unknown).
    signal: int = 0
    #: The report files the campaign wrote (``junit``, ``report`` and its plot).
    written: list[Path] = field(default_factory=list)
    #: The user targets that failed every case (the run stopped early).
    misconfigured: list[Misconfiguration] = field(default_factory=list)

    @property
    def cases_per_second(self) -> float:
        """Generated cases per second of generation (of the run, without a
        measure of generation)."""
        spent = self.generation_s or self.elapsed
        return self.cases / spent if spent else 0.0

    def runs(self) -> str:
        """``1200 generated cases (+ 3400 runs at disconnect points, 310 runs
        shrinking)``: what the run ran, each kind apart."""
        extra = [
            text
            for n, text in (
                (self.point_runs, f"{self.point_runs} runs at disconnect points"),
                (self.shrink_runs, f"{self.shrink_runs} runs shrinking"),
                (self.replay_runs, f"{self.replay_runs} replays of saved cases"),
            )
            if n
        ]
        more = f" (+ {', '.join(extra)})" if extra else ""
        return f"{self.cases} generated cases{more}"

    def statuses(self) -> Counter[str]:
        """Findings per status: ``new`` and ``known-upstream``."""
        return Counter(f.status for f in self.findings)

    def owners(self) -> Counter[str]:
        """Findings per owner: ``user`` and ``upstream-starlette``."""
        return Counter(f.owner for f in self.findings)

    def to_data(self) -> dict[str, Any]:
        counts = self.statuses()
        return {
            "backends": list(self.backends),
            # cases: generated cases; cases_per_s: per second of generation
            "cases": self.cases,
            "point_runs": self.point_runs,
            "shrink_runs": self.shrink_runs,
            "replay_runs": self.replay_runs,
            "elapsed_s": round(self.elapsed, 3),
            "generation_s": round(self.generation_s, 3),
            "cases_per_s": round(self.cases_per_second, 1),
            "counts": "cases are generated cases; cases_per_s is cases per "
            "second of generation (generation_s); point_runs, shrink_runs and "
            "replay_runs are runs besides them",
            "outcomes": dict(sorted(self.outcomes.items())),
            "findings": [f.to_data() for f in self.findings],
            "new": counts[NEW],
            "known_upstream": counts[KNOWN],
            "user": self.owners()[USER],
            "upstream_starlette": self.owners()[UPSTREAM],
            "interrupted": self.interrupted,
            "signal": self.signal,
            "misconfigured": [m.to_data() for m in self.misconfigured],
        }


def without(findings: list[Finding], target: str) -> list[Finding]:
    """The findings whose case does not run ``target`` (its symptoms go)."""
    return [
        f
        for f in findings
        if not (
            (target == "app" and f.case.app)
            or any(la.kind == target for la in f.case.stack.layers)
        )
    ]
