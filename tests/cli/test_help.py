"""Every command's --help lists its exit codes and the default of each option."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import asgifuzz
from asgifuzz._cli.main import COMMANDS, EXIT_STATUS, parser


def _parsers(name: str) -> list[argparse.ArgumentParser]:
    """The command's parser and those of its sub-operations (``corpus list``)."""
    top = parser(name)
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    found = [sub.choices[name]]
    for p in list(found):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += action.choices.values()
    return found


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_lists_exit_codes_and_defaults(name: str) -> None:
    assert set(EXIT_STATUS) == set(COMMANDS)
    for p in _parsers(name):
        text = p.format_help()
        assert "exit status:" in text
        for line in EXIT_STATUS[name]:
            assert line.split(" (")[0] in " ".join(text.split())
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.help == argparse.SUPPRESS:  # hidden: refuses itself
                continue
            assert action.help, f"{name}: {action.dest} has no help"
            default = action.default
            if default not in (None, False, [], ()) and (
                action.option_strings or action.nargs == "?"
            ):
                assert "default" in str(p._get_formatter()._get_help_string(action)), (
                    f"{name}: the help of {action.dest} does not give its default"
                )


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "asgifuzz", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"asgifuzz {asgifuzz.__version__}"
