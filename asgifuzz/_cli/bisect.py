"""``asgifuzz bisect``: the releases of a package on which a case fails."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asgifuzz._corpus.entries import write_atomically
from asgifuzz._releases.bisect import BACKENDS, bisect, format_result


def add_options(bs: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz bisect``."""
    bs.description = (
        "Replay a case (corpus entry or case JSON) on released versions "
        "of a package, each in its own cached venv, and print the ranges of "
        "failing releases. A range narrower than the sampling step can be missed."
    )
    bs.add_argument(
        "path", type=Path, metavar="PATH", help="a case or corpus entry (JSON)"
    )
    bs.add_argument("--package", default="starlette", help="default starlette")
    bs.add_argument(
        "--from",
        dest="from_",
        metavar="V",
        help="first release; default the oldest supported",
    )
    bs.add_argument("--to", metavar="V", help="last release; default the newest")
    bs.add_argument(
        "--backend", choices=BACKENDS, default="both", help="event loop(s) to replay on"
    )
    bs.add_argument("--cache", type=Path, metavar="DIR", help="venv cache folder")
    bs.add_argument("--json", type=Path, metavar="PATH", help="also write JSON here")


def main(args: argparse.Namespace) -> int:
    """Bisect and print the failing ranges (and write ``--json``): exit 0."""
    result = bisect(
        args.path,
        package=args.package,
        lo=args.from_,
        hi=args.to,
        backend=args.backend,
        cache=args.cache,
    )
    sys.stdout.write(format_result(result) + "\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(args.json, result.to_data())
    return 0
