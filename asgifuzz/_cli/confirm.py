"""``asgifuzz confirm``: does a finding happen on a real server, with a real client?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asgifuzz._cli.numbers import number, seconds
from asgifuzz._confirm.confirm import BOUND, Confirmation, confirm_on
from asgifuzz._confirm.judge import CONFIRMED
from asgifuzz._confirm.serve import SERVERS, missing
from asgifuzz._corpus.confirmed import Confirmed
from asgifuzz._corpus.entries import load_entry
from asgifuzz._corpus.replay import Target, load_target
from asgifuzz._corpus.reports import record, refresh_reports
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._markdown import table
from asgifuzz._releases.venvs import VenvCache, venv_python


def add_options(cf: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz confirm``."""
    cf.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="ENTRY",
        help="corpus entries or findings (JSON)",
    )
    cf.add_argument(
        "--server",
        choices=[*SERVERS, "all"],
        help="the real server to serve the case's app with (default: the case's "
        "server profile, if it is one of these; else uvicorn)",
    )
    cf.add_argument(
        "--tries",
        type=number(int, "tries", 1),
        default=5,
        metavar="N",
        help="how often to try a case whose outcome depends on timing (a body in "
        "several chunks, a client that hangs up); reported as k of N",
    )
    cf.add_argument(
        "--timeout",
        type=seconds,
        default=BOUND,
        metavar="SECONDS",
        help="wall-clock seconds the client waits for more of the response before "
        "it calls the response hung",
    )
    cf.add_argument(
        "--key", metavar="KEY", help="the failure to confirm (default: the entry's key)"
    )
    cf.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the verdicts as a Markdown table: entry x server",
    )
    cf.add_argument(
        "--record",
        action="store_true",
        help="store each verdict in the corpus entry (its 'confirmed' field; the "
        "file name, the case's hash, stays) and rewrite the generated parts of "
        "the corpus' reports/ from the entries",
    )
    where = cf.add_mutually_exclusive_group()
    where.add_argument(
        "--starlette",
        metavar="VERSION",
        help="serve with this Starlette release: a cached venv with it and the "
        "servers is built on first use ($ASGIFUZZ_CACHE, as bisect's)",
    )
    where.add_argument(
        "--python",
        metavar="PATH",
        help="serve with this Python (a venv with asgifuzz, Starlette and the server)",
    )


def _servers(choice: str | None, profile: str) -> list[str]:
    if choice == "all":
        return list(SERVERS)
    return [choice or (profile if profile in SERVERS else "uvicorn")]


def _recorded(result: Confirmation) -> Confirmed:
    return Confirmed(
        result.status,
        result.version,
        result.starlette,
        result.hits,
        result.tries,
        result.detail,
    )


def _in_range(path: Path, starlette: str) -> str:
    """Whether the corpus puts Starlette ``starlette`` in the entry's affected range."""
    try:
        entry = load_entry(path)
    except AsgiFuzzError:
        return "?"  # a finding copied out of fuzz --json: no range
    return "yes" if entry.affects(starlette) else "no"


def _write_table(
    path: Path,
    targets: list[Target],
    keys: list[str],
    cells: list[dict[str, str]],
    versions: dict[str, str],
) -> None:
    """The verdicts as a Markdown table: entry x server (and the corpus' range)."""
    servers = [s for s in SERVERS if any(s in row for row in cells)]
    starlette = versions.get("", "")
    header = ["entry", "key", f"affected (corpus) {starlette}".strip()]
    rows: list[list[object]] = [
        [
            f"`{target.path.stem}`",
            key,
            _in_range(target.path, starlette) if starlette else "?",
            *(row.get(s, "-") for s in servers),
        ]
        for target, key, row in zip(targets, keys, cells, strict=True)
    ]
    text = "\n".join(table([*header, *(versions.get(s, s) for s in servers)], rows))
    path.write_text(f"On Starlette {starlette or '?'}:\n\n{text}\n")


def main(args: argparse.Namespace) -> int:
    """Print one line per entry and server; exit 1 when some server confirms a
    failure."""
    targets = [load_target(path) for path in args.paths]  # bad input first
    keys: list[str] = []
    for target in targets:
        key = args.key or target.key
        if key is None:
            raise AsgiFuzzError(
                f"{target.path}: the case names no failure; pass --key KEY (e.g. "
                "--key I4:response) to say which one to confirm"
            )
        keys.append(key)
        if args.record and target.confirmed is None:
            raise AsgiFuzzError(
                f"{target.path}: --record stores the verdict in a corpus entry, and "
                "this file is a bare case or a finding; save it in a corpus first "
                "(asgifuzz fuzz --corpus DIR), or leave out --record"
            )
    python = args.python or sys.executable
    if args.starlette:
        # uvicorn and hypercorn, and the others this run uses (the venv of
        # each set has its own folder: the usual one is kept).
        wanted = {s for t in targets for s in _servers(args.server, t.case.server.name)}
        extras = [s for s in SERVERS if s in {"uvicorn", "hypercorn", *wanted}]
        venv = VenvCache().ensure("starlette", args.starlette, extras)
        python = str(venv_python(venv))
    confirmed = False
    cells: list[dict[str, str]] = []  # per entry: server -> verdict
    versions: dict[str, str] = {}  # server -> "name version"; "" -> Starlette's
    for target, key in zip(targets, keys, strict=True):
        print(f"{target.path}: {key}")
        cells.append({})
        results: dict[str, Confirmed] = {}
        for server in _servers(args.server, target.case.server.name):
            if python == sys.executable and missing(server) and args.server == "all":
                print(f"  {server}: not run: {missing(server)}")
                continue
            result = confirm_on(
                server,
                target.case,
                key,
                tries=args.tries,
                python=python,
                bound=args.timeout,
            )
            confirmed = confirmed or result.status == CONFIRMED
            print(f"  {result.line()}")
            if result.version:
                versions[server] = f"{server} {result.version}"
                versions.setdefault("", result.starlette)
            results[server] = _recorded(result)
            cells[-1][server] = results[server].cell()
        if args.record:
            record(target.path, results)
    if args.record:
        for folder in dict.fromkeys(t.path.parent for t in targets):
            for changed in refresh_reports(folder):
                print(f"wrote {changed}")
    if args.markdown:
        _write_table(args.markdown, targets, keys, cells, versions)
    return 1 if confirmed else 0
