"""``asgifuzz fuzz``: the options as a `FuzzConfig`, the `Campaign`, its summary."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from asgifuzz._campaign import preflight
from asgifuzz._campaign.campaign import Campaign, FuzzConfig
from asgifuzz._campaign.database import DEFAULT
from asgifuzz._campaign.findings import FAIL_ON, failing, ident
from asgifuzz._campaign.loop import Finding, FuzzReport
from asgifuzz._campaign.progress import MODES
from asgifuzz._campaign.report import (
    beside_report,
    counts,
    replay_command,
    repro_command,
    title,
)
from asgifuzz._campaign.supervisor import MAX_MEMORY
from asgifuzz._campaign.task import MAX_POINTS, Search, budget
from asgifuzz._campaign.watchdog import CASE_TIMEOUT, SHRINK_BUDGET
from asgifuzz._cli import options
from asgifuzz._cli.numbers import cases_count, points_count, seconds, workers_count
from asgifuzz._corpus.entries import load_corpus
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._targets.asyncio_use import calls_asyncio, only_on_trio, quiet_on_trio
from asgifuzz._types import BACKEND_CHOICES
from asgifuzz.models import case_to_data


def add_options(fz: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz fuzz``."""
    fz.add_argument(
        "--max-time",
        type=seconds,
        default=60.0,
        metavar="S",
        help="seconds to generate cases for (shrinking comes on top); default 60",
    )
    fz.add_argument(
        "--max-cases",
        type=cases_count,
        default=None,
        metavar="N",
        help="also stop generating after N generated cases (split between the "
        "workers), in rounds whose size does not depend on the machine's speed: "
        "a seed then draws the same cases on any machine; default: no limit",
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
        type=workers_count,
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
    fz.add_argument(
        "--junit", type=Path, metavar="PATH", help="also write a JUnit XML report"
    )
    fz.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write a Markdown report (and a PNG plot beside it, with matplotlib)",
    )
    fz.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="live progress on standard error: live (a table redrawn in place), lines "
        "(one line every --progress-every seconds), off; default auto: live on a "
        "terminal, else lines",
    )
    fz.add_argument(
        "--progress-every",
        type=seconds,
        default=10.0,
        metavar="S",
        help="seconds between progress lines; default 10",
    )
    fz.add_argument(
        "--no-database",
        action="store_true",
        help="do not read or write the Hypothesis example database (--database none)",
    )
    fz.add_argument(
        "--database",
        metavar="SPEC",
        default=os.environ.get("ASGIFUZZ_DATABASE", DEFAULT),
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
    faults = fz.add_argument_group("faults and limits (see README: Faults and limits)")
    faults.add_argument(
        "--case-timeout",
        type=seconds,
        default=CASE_TIMEOUT,
        metavar="S",
        help="wall-clock seconds a case may hold the process before it is a "
        f"hang:wall finding; default {CASE_TIMEOUT:g}",
    )
    faults.add_argument(
        "--shrink-budget",
        type=seconds,
        default=SHRINK_BUDGET,
        metavar="S",
        help="wall-clock seconds to shrink the hangs of one round, and each "
        f"crash (in a fresh process); default {SHRINK_BUDGET:g}",
    )
    faults.add_argument(
        "--max-memory",
        type=int,
        default=MAX_MEMORY,
        metavar="MB",
        help="address space per worker (RLIMIT_AS); going over it is a "
        f"resource:memory finding; default {MAX_MEMORY}",
    )
    faults.add_argument(
        "--no-supervisor",
        action="store_true",
        help="run the cases in this process (with --workers, in an unsupervised "
        "pool): hangs the process can interrupt are still found, crashes end the run",
    )
    search = fz.add_argument_group("search (see README: How the search works)")
    search.add_argument(
        "--points",
        type=points_count,
        default=MAX_POINTS,
        metavar="N",
        help="run each drawn case whose client never hangs up again with the "
        f"client gone at up to N points of its transcript; 0: off; default {MAX_POINTS}",
    )
    fz.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="",
        help="which findings make the exit status 1: any; new (not those labelled "
        "known-upstream by the corpus); user (new ones that are yours, not those "
        "labelled upstream (Starlette) because they show the same way with "
        "Starlette's pass-through in place of your layers). Default: user with "
        "--middleware/--app (or [tool.asgifuzz] targets), else any",
    )
    options.add_options(fz)


def config_from_args(args: argparse.Namespace) -> FuzzConfig:
    """The campaign the options describe (``pyproject.toml`` read, nothing imported)."""
    return FuzzConfig(
        max_time=args.max_time,
        max_cases=args.max_cases,
        backends=BACKEND_CHOICES[args.backend],
        seed=args.seed,
        workers=args.workers,
        database=None if args.no_database else args.database,
        shared_database=args.shared_database,
        corpus=args.corpus,
        json=args.json,
        junit=args.junit,
        report=args.report,
        progress=args.progress,
        progress_every=args.progress_every,
        targets=options.config_from_args(args),
        known_upstream=options.known_from_args(args),
        fail_on=args.fail_on,
        command="asgifuzz " + " ".join(sys.argv[1:]),
        case_timeout=args.case_timeout,
        shrink_budget=args.shrink_budget,
        max_memory=args.max_memory,
        supervised=not args.no_supervisor,
        search=Search(points=args.points),
    )


def main(args: argparse.Namespace) -> int:
    """Run the campaign; 1 when it found failures that fail the run
    (``--fail-on``), 130 when Ctrl-C stopped it."""
    warnings: list[str] = []
    config = preflight.check(config_from_args(args), warnings)
    for line in warnings:
        print(f"asgifuzz: warning: {line}", file=sys.stderr, flush=True)
    campaign = Campaign(config)
    if config.targets.options():  # not for headers, cookies or requests alone
        print(f"asgifuzz: your code: {config.targets.options()}", flush=True)
        for note in config.targets.notes():
            print(f"asgifuzz: {note}", flush=True)
    print(
        f"asgifuzz: {config.workers} worker(s) fuzzing for "
        f"{budget(config.max_time, config.max_cases)} on "
        f"{'+'.join(config.backends)} against Starlette {campaign.starlette} "
        f"(seed {config.seed})",
        flush=True,
    )
    print(f"asgifuzz: scopes: {options.scopes_header(config.targets)}", flush=True)
    report = campaign.run()
    _summary(config, report)
    return campaign.exit_status(report)


def _signal_name(signo: int) -> str:
    return signal.Signals(signo).name if signo else "SIGINT"


def _indent(stack: str, innermost: int) -> str:
    """The last ``innermost`` lines of each thread's stack, indented."""
    shown = []
    for thread in stack.split("\n\n"):
        lines = thread.splitlines()
        head, body = lines[:1], lines[1:]
        shown += [
            *head,
            *(["    ..."] if len(body) > innermost else []),
            *body[-innermost:],
        ]
    return "\n".join("    " + line for line in shown)


def _summary(config: FuzzConfig, report: FuzzReport) -> None:
    if report.interrupted:
        print(
            f"asgifuzz: interrupted after {report.elapsed:.1f}s "
            f"({_signal_name(report.signal)}); the summary "
            "covers what was done (a failure still being shrunk is lost, but the "
            "example database keeps it for the next run)",
            flush=True,
        )
    print(
        f"cases run: {report.runs()} in {report.elapsed:.1f}s "
        f"({report.cases_per_second:.1f} generated cases/s over "
        f"{report.generation_s:.1f}s of generation, each on "
        f"{len(config.backends)} backend(s))"
    )
    print(
        "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items()))
    )
    places = _asyncio_places(config)
    quiet = quiet_on_trio(report.outcomes, places)
    if quiet is not None:
        print(f"asgifuzz: note: {quiet}")
    for found in report.misconfigured:
        print(f"asgifuzz: misconfigured: {found.describe()}", file=sys.stderr)
    print(f"distinct failures: {len(report.findings)} ({counts(report)})")
    print(_known_line(config.known_upstream))
    entries = _corpus_entries(config.corpus)
    for n, finding in enumerate(report.findings, 1):
        flaky = " (flaky: did not fail again on replay)" if finding.flaky else ""
        print(
            f"\n--- failure {n}: {title(finding)}{flaky}, first seen "
            f"after {finding.first_seen_s:.1f}s / {finding.first_seen_cases} cases"
        )
        if len(finding.keys) > 1:
            print(f"  keys: {', '.join(finding.keys)} (one root cause)")
        for line in finding.describe_also():
            print(f"  {line}")
        if places and finding.backends == ("trio",) and len(config.backends) > 1:
            print(f"  {only_on_trio(places)}")
        for message in finding.messages:
            print(f"  {message}")
        if finding.stack:
            print("  stack when caught:\n" + _indent(finding.stack, 10))
        print(
            "  shrunk case: " + json.dumps(case_to_data(finding.case), sort_keys=True)
        )
        if finding.swapped is not None:
            print(
                "  upstream (Starlette): the same failure shows with each of your "
                "layers swapped for a built-in layer of its family (Starlette's "
                "pass-through; a buffer or an encoder for a layer that holds or "
                "encodes the response): "
                + json.dumps(case_to_data(finding.swapped), sort_keys=True)
            )
        where = finding.saved or entries.get(finding.ident)
        if config.corpus is not None:
            print(
                f"  saved: {finding.saved}"
                if finding.saved
                else f"  kept the smaller entry saved before: {where or '?'}"
            )
        if where is None and config.report is not None:
            where = beside_report(config.report, n, finding)
        print(
            f"  replay: {replay_command(where, finding)}{_allow(config, finding)}"
            if where is not None
            else "  replay: not saved; run again with --corpus DIR (or --report "
            "PATH) to save it, then asgifuzz replay PATH"
        )
        if where is not None and finding.owner != "user":
            # Starlette's: a script with Starlette code only (the swapped case).
            print(f"  reproducer (Starlette only): {repro_command(where, finding)}")
    if report.findings:
        print(_fail_line(config, report))
    for path in report.written:
        print(f"wrote {path}")


def _fail_line(config: FuzzConfig, report: FuzzReport) -> str:
    """How many findings fail the run under ``--fail-on``, and why the rest do not."""
    fail_on = config.failing_on
    fails = sum(failing(f, fail_on) for f in report.findings)
    rest = {
        "any": "",
        "new": ", the rest are known upstream",
        "user": ", the rest are Starlette's or known upstream",
    }[fail_on]
    why = rest if fails < len(report.findings) else ""
    return (
        f"failing the run (--fail-on {fail_on}): {fails} of {len(report.findings)}{why}"
    )


def _asyncio_places(config: FuzzConfig) -> list[str]:
    """Where the user's code calls asyncio directly (when it runs on trio too)."""
    if config.targets.empty or "trio" not in config.backends:
        return []
    middleware, app = config.targets.allow()  # allowed already: no import again
    return calls_asyncio(*middleware, *([app] if app is not None else []))


def _allow(config: FuzzConfig, finding: Finding) -> str:
    """The options that allow the user's code again, for a case that names it."""
    case = finding.case
    if config.targets.empty or not (
        case.app or any(la.family == "user" for la in case.stack.layers)
    ):
        return ""
    return " " + config.targets.options()


def _known_line(known: KnownBugs) -> str:
    """Where the labels came from."""
    if not known.directories:
        return "known bugs: none (every finding is labelled new)"
    where = ", ".join(str(d) for d in known.directories)
    return (
        f"known bugs: {len(known.bugs)} corpus entries affecting Starlette "
        f"{known.version} ({where})"
    )


def _corpus_entries(corpus: Path | None) -> dict[str, Path]:
    """The entries of the run's corpus by signature (a finding whose smaller
    entry was saved before replays from that one)."""
    if corpus is None or not corpus.is_dir():
        return {}
    return {ident(e.signature or e.key, e.swapped): e.path for e in load_corpus(corpus)}
