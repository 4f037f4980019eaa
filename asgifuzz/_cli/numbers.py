"""The argparse types of ``asgifuzz fuzz``'s numbers: each refuses a bad value
with what it needs (argparse then exits with status 2)."""

from __future__ import annotations

import argparse


def seconds(text: str) -> float:
    """A number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def workers_count(text: str) -> int:
    """A number of workers, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of workers"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need at least 1 worker")
    return value


def cases_count(text: str) -> int:
    """A number of cases, 1 or more."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: need a number of cases, 1 or more")
    return int(text)


def points_count(text: str) -> int:
    """A number of disconnect points, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r}: need a number of points, 0 or more"
        )
    return int(text)
