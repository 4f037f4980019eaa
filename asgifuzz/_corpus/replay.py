"""Saved cases to replay: load one (bare case, corpus entry, finding) and classify
what its replays show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asgifuzz._corpus.confirmed import Confirmed
from asgifuzz._corpus.entries import entry_from_data
from asgifuzz._corpus.files import read_json
from asgifuzz._oracles.verdict import Verdict
from asgifuzz.models import Case, case_from_data


@dataclass
class Target:
    """A case to replay and, for a corpus entry, the failure it is known for."""

    path: Path
    case: Case
    key: str | None = None
    #: A corpus entry's record of the user targets the case names.
    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    #: For Starlette's failure in a case with the user's layers: the case with
    #: each swapped for the built-in pass-through of its family.
    swapped: Case | None = None
    #: A corpus entry's recorded verdicts on real servers (``confirm --record``).
    confirmed: dict[str, Confirmed] | None = None


def load_target(path: Path) -> Target:
    """A bare case, a corpus entry, or a finding copied out of ``fuzz --json``.

    Read by `read_json`, as every command reads a corpus file, so a hostile
    file gets the same `CaseFormatError` everywhere.
    """
    data = read_json(path)
    if isinstance(data, dict) and "case" in data and "format" in data and "key" in data:
        entry = entry_from_data(path, data)
        return Target(
            path, entry.case, entry.key, entry.targets, entry.swapped, entry.confirmed
        )
    if isinstance(data, dict) and "case" in data:
        key = data.get("key")
        if not (isinstance(key, str) and len(key) <= 200):
            key = None
        case = case_from_data(data["case"], source=f"{path}: case")
        swapped = None
        if "swapped" in data:
            swapped = case_from_data(data["swapped"], source=f"{path}: swapped")
        return Target(path, case, key, swapped=swapped)
    return Target(path, case_from_data(data, source=str(path)))


def classify(target: Target, verdicts: list[Verdict]) -> str:
    """still failing / failing differently / passing now / flaky (k of n runs).

    Starlette's failures in a case with the user's layers (`Verdict.elsewhere`)
    count: an entry of one is still failing while Starlette's bug shows.
    """
    failing = [v for v in verdicts if v.failed or v.upstream]
    if failing and len(failing) < len(verdicts):
        return f"flaky: failed {len(failing)} of {len(verdicts)} runs"
    if not failing:
        return "passing now (fixed?)" if target.key else "passes"
    keys = {
        x.key
        for v in failing
        for vs in [*v.violations.values(), *v.elsewhere.values()]
        for x in vs
    }
    if target.key is None:
        return "fails"
    if target.key in keys:
        return f"still failing ({target.key})"
    return f"failing differently ({', '.join(sorted(keys))}; was {target.key})"
