"""The ``asgifuzz`` command: the parser's skeleton, the dispatch, the one error handler.

Each command is a module of this package with ``add_options(parser)`` and
``main(args) -> int``. Only the module of the command being run is imported
(its options are added to the parser then), so ``asgifuzz --help`` loads no
Starlette, Hypothesis or rich.

Exit status: 0 nothing found, 1 failures found, 2 bad usage or bad input, 3
(``fuzz``) a target of the user's failed every case, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from asgifuzz import __version__
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._targets.specs import scoped

#: The commands and their one-line help, in the order ``--help`` lists them.
COMMANDS = {
    "fuzz": "fuzz the built-in models against the installed Starlette",
    "corpus": "list, show, merge, minimize or prune a corpus",
    "bisect": "replay a case on released versions and find where it fails",
    "matrix": "releases x invariants: which corpus entries fail where",
    "repro": "print a standalone script reproducing a case (Starlette + anyio only)",
    "replay": "run saved cases again and show what happens",
    "confirm": "serve a finding's app with real servers and confirm it with a real client",
}

_USAGE = "2 bad usage or bad input (one line on standard error says what and the fix)"
#: What each command's exit status means (its ``--help`` lists them).
EXIT_STATUS = {
    "fuzz": (
        "0 nothing found (or nothing that fails the run under --fail-on)",
        "1 failures found that fail the run (--fail-on; fuzzing your code, only yours "
        "by default)",
        _USAGE,
        "3 stopped early: your middleware or app raised on every one of the first "
        "cases (likely misconfigured; the message says what it was missing)",
        "130 stopped by Ctrl-C, 143 by SIGTERM (after writing what was found)",
    ),
    "corpus": ("0 done", _USAGE),
    "bisect": ("0 bisected (the failing ranges are printed)", _USAGE),
    "matrix": ("0 done", "1 with --check: a release is not as expected", _USAGE),
    "repro": (
        "0 the script was printed (for your case, of Starlette's failure: the "
        "script of its swapped, Starlette-only case)",
        _USAGE,
    ),
    "replay": ("0 every case passes", "1 a case fails (or is flaky)", _USAGE),
    "confirm": (
        "0 not confirmed (or not confirmable) on every server",
        "1 confirmed on some server",
        _USAGE,
    ),
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Says each option's default where its help does not already (and keeps
    the epilog's lines)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default not in (None, False, argparse.SUPPRESS, [], ())
            and (action.option_strings or action.nargs == "?")
            and not isinstance(action, argparse._HelpAction)
        ):
            shown = (
                ",".join(map(str, default)) if isinstance(default, list) else default
            )
            text += f" (default: {shown})"
        return text


def _epilog(name: str) -> str:
    return "exit status:\n" + "\n".join(f"  {line}" for line in EXIT_STATUS[name])


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
    if name == "confirm":
        from asgifuzz._cli import confirm  # lazily, see above

        return confirm
    from asgifuzz._cli import replay  # lazily, see above

    return replay


def parser(name: str | None = None) -> argparse.ArgumentParser:
    """The parser: every command listed, with the options of command ``name``."""
    top = argparse.ArgumentParser(
        prog="asgifuzz",
        description="Fuzz ASGI middleware stacks for concurrency, cancellation and "
        "streaming bugs.",
    )
    top.add_argument("--version", action="version", version=f"asgifuzz {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    for each, summary in COMMANDS.items():
        p = sub.add_parser(
            each,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_epilog(each),
            formatter_class=_Formatter,
        )
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
        # Names are per run of a command (per config), not per process.
        with scoped(({}, {})):
            return command(args.command).main(args)
    except AsgiFuzzError as exc:
        print(f"asgifuzz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asgifuzz: interrupted", file=sys.stderr)
        return 130
