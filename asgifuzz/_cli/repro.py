"""``asgifuzz repro``: print a standalone script that reproduces a case's failure."""

from __future__ import annotations

import argparse
from pathlib import Path

from asgifuzz._corpus.entries import load_entry
from asgifuzz._corpus.replay import load_target
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._oracles.verdict import judge
from asgifuzz._repro.live import LIVE_SERVERS, render_live
from asgifuzz._repro.script import render_repro


def add_options(rr: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz repro``."""
    rr.add_argument(
        "path", type=Path, metavar="PATH", help="a case or corpus entry (JSON)"
    )
    rr.add_argument(
        "--key",
        metavar="KEY",
        help="the failure to reproduce, e.g. I1:RuntimeError (default: the entry's key, "
        "or the first failure the case shows now)",
    )
    rr.add_argument(
        "--server",
        choices=LIVE_SERVERS,
        help="a script that serves the app with this real server and plays the "
        "client over a socket (Starlette, the server and the standard library only)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the script (Starlette + anyio only) of the failure ``--key`` or the
    entry's; a case that names none and passes now is bad input."""
    target = load_target(args.path)
    key = args.key or target.key
    title = upstream = ""
    if target.key is not None and args.path.suffix == ".json":
        try:
            entry = load_entry(args.path)
            title, upstream = entry.title, entry.upstream
        except AsgiFuzzError:
            pass  # a finding copied out of fuzz --json: no title or link
    if key is None:
        found = judge(target.case).first()
        if found is None:
            raise AsgiFuzzError(
                f"{args.path}: the case passes now on both backends and names no "
                "failure; pass --key KEY to say which failure to reproduce"
            )
        key = found[1].key
    try:
        if args.server:
            script = render_live(
                target.case, key, args.server, title=title, upstream=upstream
            )
        else:
            script = render_repro(target.case, key, title=title, upstream=upstream)
        print(script, end="")
    except ValueError as exc:
        raise AsgiFuzzError(f"{args.path}: {exc}") from None
    return 0
