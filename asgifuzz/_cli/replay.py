"""``asgifuzz replay``: run saved cases again, say what changed, show the timeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from asgifuzz._campaign.watchdog import Watchdog
from asgifuzz._cli import options
from asgifuzz._corpus.confirmed import summary
from asgifuzz._corpus.replay import classify, load_target
from asgifuzz._driver.timeline import mermaid, timeline
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets.specs import require
from asgifuzz._types import BACKEND_CHOICES


def add_options(rp: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz replay``."""
    rp.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="cases, corpus entries or findings copied out of fuzz --json",
    )
    rp.add_argument(
        "--backend",
        choices=sorted(BACKEND_CHOICES),
        default="both",
        help="event loop(s) to replay on",
    )
    rp.add_argument("--trace", action="store_true", help="print the message timeline")
    rp.add_argument(
        "--mermaid",
        type=Path,
        metavar="DIR",
        help="write each timeline as a Mermaid sequence diagram into DIR",
    )
    rp.add_argument(
        "--runs",
        type=int,
        default=1,
        metavar="N",
        help="replay each case N times and report a case that fails only sometimes "
        "as flaky, with its rate",
    )
    options.add_options(rp, generation=False)


def main(args: argparse.Namespace, backends: tuple[str, ...] | None = None) -> int:
    """Replay each path ``args.runs`` times (on ``backends``, default those of
    ``--backend``); exit 1 if any still fails."""
    if args.runs < 1:
        raise AsgiFuzzError(f"--runs {args.runs}: must be at least 1")
    backends = backends or BACKEND_CHOICES[args.backend]
    options.config_from_args(args).allow()
    targets = [load_target(p) for p in args.paths]
    for target in targets:
        require(target.case, str(target.path), target.targets)
    any_failed = False
    dog = Watchdog()
    for target in targets:
        verdicts = []
        for _ in range(args.runs):
            verdict, fault = dog.judge(target.case, backends, judge)
            if fault is not None:
                # Under the same wall-clock watchdog as fuzz: say it, go on.
                print(f"{target.path}: still fails: [{fault.key}] {fault.message}")
                any_failed = True
                break
            assert verdict is not None  # no fault: a verdict
            verdicts.append(verdict)
        if not verdicts:
            continue
        print(f"{target.path}: {classify(target, verdicts)}")
        if target.confirmed is not None:  # a corpus entry
            print(f"  on real servers: {summary(target.confirmed)}")
        last = verdicts[-1]
        for backend, violations in last.violations.items():
            for v in violations:
                print(f"  {backend}: [{v.key}] {v.message}")
        for backend, violations in last.elsewhere.items():
            for v in violations:
                print(f"  {backend}: [{v.key}] {v.message} (upstream (Starlette))")
        if args.trace:
            for outcome in last.outcomes.values():
                print(timeline(outcome))
        if args.mermaid is not None:
            args.mermaid.mkdir(parents=True, exist_ok=True)
            for backend, outcome in last.outcomes.items():
                out = args.mermaid / f"{target.path.stem}-{backend}.mmd"
                out.write_text(mermaid(outcome))
                print(f"  wrote {out}")
        any_failed = any_failed or any(v.failed or v.upstream for v in verdicts)
    return 1 if any_failed else 0
