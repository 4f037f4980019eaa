"""``asgifuzz replay``: run saved cases again, say what changed, show the timeline."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from asgifuzz._errors import AsgiFuzzError
from asgifuzz._outcome import mermaid, timeline
from asgifuzz._verdict import Verdict, judge
from asgifuzz.models import Case, case_from_data


@dataclass
class Target:
    """A case to replay and, for a corpus entry, the failure it is known for."""

    path: Path
    case: Case
    key: str | None = None
    #: A corpus entry's record of the user targets the case names.
    targets: dict[str, dict[str, str]] = field(default_factory=dict)


def load_target(path: Path) -> Target:
    """A bare case, a corpus entry, or a finding copied out of ``fuzz --json``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise AsgiFuzzError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and "case" in data and "format" in data and "key" in data:
        from asgifuzz._corpus import load_entry

        entry = load_entry(path)
        return Target(path, entry.case, entry.key, entry.targets)
    if isinstance(data, dict) and "case" in data:
        key = data.get("key") if isinstance(data.get("key"), str) else None
        return Target(path, case_from_data(data["case"], source=f"{path}: case"), key)
    return Target(path, Case.from_json(text, source=str(path)))


def classify(target: Target, verdicts: list[Verdict]) -> str:
    """still failing / failing differently / passing now / flaky (k of n runs)."""
    failing = [v for v in verdicts if v.failed]
    if failing and len(failing) < len(verdicts):
        return f"flaky: failed {len(failing)} of {len(verdicts)} runs"
    if not failing:
        return "passing now (fixed?)" if target.key else "passes"
    keys = {x.key for v in failing for vs in v.violations.values() for x in vs}
    if target.key is None:
        return "fails"
    if target.key in keys:
        return f"still failing ({target.key})"
    return f"failing differently ({', '.join(sorted(keys))}; was {target.key})"


def main(args: argparse.Namespace, backends: tuple[str, ...]) -> int:
    """Replay each path ``args.runs`` times; exit 1 if any still fails."""
    from asgifuzz._target_options import config_from_args
    from asgifuzz._targets import require

    config_from_args(args).allow()
    targets = [load_target(p) for p in args.paths]
    for target in targets:
        require(target.case, str(target.path), target.targets)
    any_failed = False
    for target in targets:
        verdicts = [judge(target.case, backends) for _ in range(args.runs)]
        print(f"{target.path}: {classify(target, verdicts)}")
        last = verdicts[-1]
        for backend, violations in last.violations.items():
            for v in violations:
                print(f"  {backend}: [{v.key}] {v.message}")
        if args.trace:
            for outcome in last.outcomes.values():
                print(timeline(outcome))
        if args.mermaid is not None:
            args.mermaid.mkdir(parents=True, exist_ok=True)
            for backend, outcome in last.outcomes.items():
                out = args.mermaid / f"{target.path.stem}-{backend}.mmd"
                out.write_text(mermaid(outcome))
                print(f"  wrote {out}")
        any_failed = any_failed or any(v.failed for v in verdicts)
    return 1 if any_failed else 0
