"""The ``asgifuzz`` command: the parser's skeleton, the dispatch, the one error handler.

Each command is a module of this package with ``add_options(parser)`` and
``main(args) -> int``. Only the module of the command being run is imported
(its options are added to the parser then), so ``asgifuzz --help`` loads no
Starlette, Hypothesis or rich.

Exit status: 0 nothing found, 1 failures found, 2 bad usage or bad input, 130
interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from asgifuzz._errors import AsgiFuzzError

#: The commands and their one-line help, in the order ``--help`` lists them.
COMMANDS = {
    "fuzz": "fuzz the built-in models against the installed Starlette",
    "corpus": "list, show, merge, minimize or prune a corpus",
    "bisect": "replay a case on released versions and find where it fails",
    "matrix": "releases x invariants: which corpus entries fail where",
    "repro": "print a standalone script reproducing a case (Starlette + anyio only)",
    "replay": "run saved cases again and show what happens",
}


class Command(Protocol):
    """A command's module."""

    def add_options(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def command(name: str) -> Command:
    """The module of command ``name``, imported now: each one loads what its
    command needs (Starlette, Hypothesis, rich), which ``--help`` does not."""
    if name == "fuzz":
        from asgifuzz._cli import fuzz  # lazily, see above

        return fuzz
    if name == "corpus":
        from asgifuzz._cli import corpus  # lazily, see above

        return corpus
    if name == "bisect":
        from asgifuzz._cli import bisect  # lazily, see above

        return bisect
    if name == "matrix":
        from asgifuzz._cli import matrix  # lazily, see above

        return matrix
    if name == "repro":
        from asgifuzz._cli import repro  # lazily, see above

        return repro
    from asgifuzz._cli import replay  # lazily, see above

    return replay


def parser(name: str | None = None) -> argparse.ArgumentParser:
    """The parser: every command listed, with the options of command ``name``."""
    top = argparse.ArgumentParser(
        prog="asgifuzz",
        description="Fuzz ASGI middleware stacks for concurrency, cancellation and "
        "streaming bugs.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    for each, summary in COMMANDS.items():
        p = sub.add_parser(each, help=summary)
        if each == name:
            command(each).add_options(p)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asgifuzz`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The command is the first word: the top level has no option taking a value.
    name = next((a for a in argv if not a.startswith("-")), None)
    args = parser(name).parse_args(argv)
    try:
        return command(args.command).main(args)
    except AsgiFuzzError as exc:
        print(f"asgifuzz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asgifuzz: interrupted", file=sys.stderr)
        return 130
