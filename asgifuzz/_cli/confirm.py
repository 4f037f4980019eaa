"""``asgifuzz confirm``: does a finding happen on a real server, with a real client?"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from asgifuzz._confirm.confirm import BOUND, confirm_on
from asgifuzz._confirm.judge import CONFIRMED
from asgifuzz._confirm.serve import SERVERS
from asgifuzz._corpus.replay import load_target
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._releases.venvs import VenvCache, venv_python


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` above 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    return parse


def add_options(cf: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz confirm``."""
    cf.add_argument(
        "path", type=Path, metavar="ENTRY", help="a corpus entry or a finding (JSON)"
    )
    cf.add_argument(
        "--server",
        choices=[*SERVERS, "all"],
        help="the real server to serve the case's app with (default: the case's "
        "server profile, if it is one of these; else uvicorn)",
    )
    cf.add_argument(
        "--tries",
        type=_positive(int),
        default=5,
        metavar="N",
        help="how often to try a case whose outcome depends on timing (a body in "
        "several chunks, a client that hangs up); reported as k of N",
    )
    cf.add_argument(
        "--timeout",
        type=_positive(float),
        default=BOUND,
        metavar="SECONDS",
        help="wall-clock seconds the client waits for more of the response before "
        "it calls the response hung",
    )
    cf.add_argument(
        "--key", metavar="KEY", help="the failure to confirm (default: the entry's key)"
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


def main(args: argparse.Namespace) -> int:
    """Print one line per server; exit 1 when some server confirms the failure."""
    target = load_target(args.path)
    key = args.key or target.key
    if key is None:
        raise AsgiFuzzError(
            f"{args.path}: the case names no failure; pass --key KEY (e.g. "
            "--key I4:response) to say which one to confirm"
        )
    if args.server == "all":
        servers = list(SERVERS)
    else:
        profile = target.case.server.name
        servers = [args.server or (profile if profile in SERVERS else "uvicorn")]
    python = args.python or sys.executable
    if args.starlette:
        venv = VenvCache().ensure("starlette", args.starlette, list(SERVERS))
        python = str(venv_python(venv))
    print(f"{args.path}: {key}")
    confirmed = False
    for server in servers:
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
    return 1 if confirmed else 0
