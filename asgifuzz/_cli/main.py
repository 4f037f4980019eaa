"""The command line: ``asgifuzz fuzz`` and ``asgifuzz replay``.

Exit status: 0 nothing found, 1 failures found, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from asgifuzz._errors import AsgiFuzzError
from asgifuzz._types import BACKEND_CHOICES


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _workers_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of workers"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need at least 1 worker")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgifuzz",
        description="Fuzz ASGI middleware stacks for concurrency, cancellation and "
        "streaming bugs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fz = sub.add_parser(
        "fuzz", help="fuzz the built-in models against the installed Starlette"
    )
    fz.add_argument(
        "--max-time",
        type=_positive,
        default=60.0,
        metavar="S",
        help="seconds to generate cases for (shrinking comes on top); default 60",
    )
    fz.add_argument(
        "--backend",
        choices=sorted(BACKEND_CHOICES),
        default="both",
        help="event loop(s) to run each case on; default both",
    )
    fz.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the case generator; default 0",
    )
    fz.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the summary as JSON"
    )
    fz.add_argument(
        "--workers",
        type=_workers_count,
        default=1,
        metavar="N",
        help="worker processes, each with its own seed, sharing the database and corpus",
    )
    fz.add_argument(
        "--corpus",
        type=Path,
        metavar="DIR",
        help="save each shrunk failure as a corpus entry in DIR",
    )
    from asgifuzz._campaign import campaign as _campaign

    _campaign.add_options(fz)
    fz.add_argument(
        "--no-database",
        action="store_true",
        help="do not read or write the Hypothesis example database (--database none)",
    )
    fz.add_argument(
        "--database",
        metavar="SPEC",
        default=os.environ.get("ASGIFUZZ_DATABASE", ".hypothesis/examples"),
        help="the Hypothesis example database: a directory, redis://HOST:PORT/DB, "
        "or none (default: $ASGIFUZZ_DATABASE or .hypothesis/examples)",
    )
    fz.add_argument(
        "--shared-database",
        metavar="SPEC",
        default=os.environ.get("ASGIFUZZ_SHARED_DATABASE"),
        help="a database to read but never write: a directory, redis://..., or "
        "github:OWNER/REPO[/ARTIFACT] (default: $ASGIFUZZ_SHARED_DATABASE)",
    )
    from asgifuzz._cli import corpus as _corpus_cli
    from asgifuzz._releases import bisect as _bisect
    from asgifuzz._targets import config as _target_options

    _target_options.add_options(fz)
    _corpus_cli.add_parser(sub)
    _bisect.add_parser(sub)
    from asgifuzz._releases import matrix as _matrix

    _matrix.add_parser(sub)
    rr = sub.add_parser(
        "repro",
        help="print a standalone script reproducing a case (Starlette + anyio only)",
    )
    rr.add_argument("path", type=Path, metavar="PATH")
    rr.add_argument(
        "--key",
        metavar="KEY",
        help="the failure to reproduce, e.g. I1:RuntimeError (default: the entry's key, "
        "or the first failure the case shows now)",
    )
    rp = sub.add_parser("replay", help="run saved cases again and show what happens")
    rp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    rp.add_argument("--backend", choices=sorted(BACKEND_CHOICES), default="both")
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
    _target_options.add_options(rp)
    return parser


def _fuzz(args: argparse.Namespace) -> int:
    import starlette

    from asgifuzz._campaign.loop import fuzz
    from asgifuzz.models import case_to_data

    backends = BACKEND_CHOICES[args.backend]
    from asgifuzz._campaign.database import combined

    if args.no_database:
        database = None
    else:
        database = combined(args.database, args.shared_database)
    version = getattr(starlette, "__version__", "?")
    from asgifuzz._targets.config import config_from_args, known_from_args
    from asgifuzz._targets.specs import used_by

    targets = config_from_args(args)
    known = known_from_args(args) or None
    strategy = None if targets.empty else targets.strategy()
    if not targets.empty:
        print(f"asgifuzz: your code: {targets.options()}", flush=True)
    print(
        f"asgifuzz: {args.workers} worker(s) fuzzing for {args.max_time:g}s on {'+'.join(backends)} "
        f"against Starlette {version} (seed {args.seed})",
        flush=True,
    )
    from asgifuzz._campaign.campaign import Campaign, hooks

    campaign = Campaign(args, backends, version)
    if args.workers > 1:
        from asgifuzz._campaign.workers import fuzz_parallel

        report = fuzz_parallel(
            args.workers,
            max_time=args.max_time,
            backends=backends,
            seed=args.seed,
            database=None if args.no_database else args.database,
            shared=args.shared_database,
            targets=None if targets.empty else targets,
            known_upstream=known,
            **hooks(campaign, args.workers),
        )
    else:
        report = fuzz(
            max_time=args.max_time,
            backends=backends,
            seed_=args.seed,
            database=database,
            strategy=strategy,
            known_upstream=known,
            **hooks(campaign, args.workers),
        )
    campaign.finish(report)
    print(
        f"cases run: {report.cases} in {report.elapsed:.1f}s "
        f"({report.cases_per_second:.1f} cases/s, each on {len(backends)} backend(s))"
    )
    print(
        "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items()))
    )
    print(f"distinct failures: {len(report.findings)}")
    for key, runs in sorted(report.upstream.items()):
        where = (known or {}).get(key, "the backends differ only by known bugs")
        print(
            f"known upstream (expected, not a failure): {key} in {runs} runs ({where})"
        )
    for n, finding in enumerate(report.findings, 1):
        flaky = " (flaky: did not fail again on replay)" if finding.flaky else ""
        print(
            f"\n--- failure {n}: {finding.key} on {finding.backend}{flaky}, first seen "
            f"after {finding.first_seen_s:.1f}s / {finding.first_seen_cases} cases"
        )
        for message in finding.messages:
            print(f"  {message}")
        print(
            "  shrunk case: " + json.dumps(case_to_data(finding.case), sort_keys=True)
        )
        if args.corpus is not None:
            from asgifuzz._corpus.entries import save_finding

            saved = save_finding(
                args.corpus,
                finding.key,
                finding.case,
                finding.backend,
                finding.messages,
                finding.signature,
                targets=used_by(finding.case),
            )
            if saved:
                campaign.saved[finding.key] = saved
            print(
                f"  saved: {saved}"
                if saved
                else "  kept the smaller entry saved before"
            )
    if args.json is not None:
        data = report.to_data()
        data["starlette"] = version
        from asgifuzz._corpus.entries import write_atomically

        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(args.json, data)
    for path in campaign.write_reports(report):
        print(f"wrote {path}")
    return campaign.exit_status(report)


def _replay(args: argparse.Namespace) -> int:
    from asgifuzz._cli import replay as _replay

    if args.runs < 1:
        raise AsgiFuzzError(f"--runs {args.runs}: must be at least 1")
    return _replay.main(args, BACKEND_CHOICES[args.backend])


def _repro(args: argparse.Namespace) -> int:
    from asgifuzz._corpus.replay import load_target
    from asgifuzz._repro.script import render_repro

    target = load_target(args.path)
    key = args.key or target.key
    title = upstream = ""
    if target.key is not None and args.path.suffix == ".json":
        try:
            from asgifuzz._corpus.entries import load_entry

            entry = load_entry(args.path)
            title, upstream = entry.title, entry.upstream
        except AsgiFuzzError:
            pass  # a finding copied out of fuzz --json: no title or link
    if key is None:
        from asgifuzz._oracles.verdict import judge

        found = judge(target.case).first()
        if found is None:
            raise AsgiFuzzError(
                f"{args.path}: the case passes now on both backends and names no "
                "failure; pass --key KEY to say which failure to reproduce"
            )
        key = found[1].key
    try:
        print(render_repro(target.case, key, title=title, upstream=upstream), end="")
    except ValueError as exc:
        raise AsgiFuzzError(f"{args.path}: {exc}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asgifuzz`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "fuzz":
            return _fuzz(args)
        if args.command == "repro":
            return _repro(args)
        if args.command == "bisect":
            from asgifuzz._releases import bisect as _bisect

            return _bisect.main(args)
        if args.command == "matrix":
            from asgifuzz._releases import matrix as _matrix

            return _matrix.main(args)
        if args.command == "corpus":
            from asgifuzz._cli import corpus as _corpus_cli

            return _corpus_cli.main(args)
        return _replay(args)
    except AsgiFuzzError as exc:
        print(f"asgifuzz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asgifuzz: interrupted", file=sys.stderr)
        return 130
