"""``asgifuzz repro``: print a standalone script that reproduces a case's failure.

A case that runs the user's code cannot be a standalone script. When its
failure is Starlette's (the entry or finding holds ``swapped``: the case with
each user layer swapped for the built-in pass-through of its family, which
fails the same way), the script is that swapped case's, and standard error
says so; when it is the user's, there is none to write.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asgifuzz._campaign.findings import user_code
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
        "client over a socket (Starlette, the server and the standard library only; "
        "a websocket case's client is wsproto's)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the script (Starlette + anyio only) of the failure ``--key`` or the
    entry's; a case that names none and passes now is bad input, and so is a
    case of the user's code without a swapped case (their failure)."""
    target = load_target(args.path)
    case = target.case
    specs = target.targets.get("middleware", {})
    app_spec = target.targets.get("app", {}).get(case.app, "")
    theirs = case.scope == "websocket" or case.lifespan is not None
    if user_code(case) and target.swapped is not None:
        case = target.swapped
        print(
            f"asgifuzz: {args.path} runs your code, but its failure is Starlette's: "
            "this script reproduces the swapped case (each of your layers "
            "replaced by a built-in layer of its family: Starlette's "
            "pass-through, or a buffer or an encoder for one that holds or "
            "encodes the response), which "
            "fails the same way with Starlette code only",
            file=sys.stderr,
        )
    elif user_code(case) and theirs and (specs or app_spec):
        print(
            f"asgifuzz: {args.path} runs your code and the failure is yours: "
            "this script imports it by the spec the entry records "
            f"({', '.join(sorted({*specs.values(), app_spec} - {''}))}); run it "
            "where that imports",
            file=sys.stderr,
        )
    elif user_code(case) and not theirs:
        raise AsgiFuzzError(
            f"{args.path}: the case runs your own middleware or app, and its "
            "failure is yours (it records no swapped case: with each of your "
            "layers swapped for Starlette's pass-through it did not fail the "
            "same way), so no Starlette-only script can show it; replay it "
            "with asgifuzz replay and the --middleware/--app options it names"
        )
    key = args.key or target.key
    title = upstream = ""
    if target.key is not None and args.path.suffix == ".json":
        try:
            entry = load_entry(args.path)
            title, upstream = entry.title, entry.upstream
        except AsgiFuzzError:
            pass  # a finding copied out of fuzz --json: no title or link
    if key is None:
        found = judge(case).first()
        if found is None:
            raise AsgiFuzzError(
                f"{args.path}: the case passes now on both backends and names no "
                "failure; pass --key KEY to say which failure to reproduce"
            )
        key = found[1].key
    try:
        if args.server:
            script = render_live(
                case,
                key,
                args.server,
                title=title,
                upstream=upstream,
                specs=specs,
                app_spec=app_spec,
            )
        else:
            script = render_repro(
                case,
                key,
                title=title,
                upstream=upstream,
                specs=specs,
                app_spec=app_spec,
            )
        print(script, end="")
    except ValueError as exc:
        raise AsgiFuzzError(f"{args.path}: {exc}") from None
    return 0
