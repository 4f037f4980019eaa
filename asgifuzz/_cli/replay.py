"""``asgifuzz replay``: run saved cases again, say what changed, show the timeline."""

from __future__ import annotations

import argparse

from asgifuzz._corpus.replay import classify, load_target
from asgifuzz._driver.timeline import mermaid, timeline
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets.config import config_from_args
from asgifuzz._targets.specs import require


def main(args: argparse.Namespace, backends: tuple[str, ...]) -> int:
    """Replay each path ``args.runs`` times; exit 1 if any still fails."""
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
