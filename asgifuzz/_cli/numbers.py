"""The argparse types of the commands' numbers: each refuses a bad value with
what it needs (argparse then exits with status 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)


def number(
    kind: type[N], what: str, least: N, *, above: bool = False
) -> Callable[[str], N]:
    """An argparse type: a ``kind`` of at least ``least`` (above it, with
    ``above``), whose errors name ``what`` it counts (``"cases"``)."""
    need = f"need a number of {what}, " + (
        f"above {least:g}" if above else f"{least:g} or more"
    )

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {need}") from None
        if value < least or (above and value == least) or value != value:
            raise argparse.ArgumentTypeError(f"{text!r}: {need}")
        return value

    parse.__name__ = f"number of {what}"  # argparse names the type by it
    return parse


#: Seconds above 0 (``--max-time``, ``--case-timeout``, ...).
seconds = number(float, "seconds", 0.0, above=True)
#: Workers, 1 or more.
workers_count = number(int, "workers", 1)
#: Generated cases, 1 or more.
cases_count = number(int, "cases", 1)
#: Disconnect points, 0 or more.
points_count = number(int, "points", 0)
