"""The scope types `cases` can draw, and the strategy each is drawn by.

``http`` cases are `cases`' own; every other scope names a function taking
``middleware=``, ``builtin=`` and ``app=`` (as `cases` does) and returning a strategy of
cases of that scope, or None while this build does not generate them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from asgifuzz.models import Case
from asgifuzz.strategies._ws import websocket_cases

#: Every scope type of ASGI, in the order ``--scope`` lists them.
SCOPE_NAMES = ("http", "websocket", "lifespan")
#: How each non-HTTP scope's cases are drawn (None: not generated yet).
SCOPE_CASES: dict[str, Callable[..., SearchStrategy[Case]] | None] = {
    "websocket": websocket_cases,
    # Filled in by asgifuzz.strategies._lifespan (its sessions are drawn from `cases`,
    # which imports this module).
    "lifespan": None,
}


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """``scopes`` in `SCOPE_NAMES` order; `InvalidArgument` names what is wrong."""
    chosen = [scopes] if isinstance(scopes, str) else list(scopes)
    unknown = [s for s in chosen if s not in SCOPE_NAMES]
    if unknown or not chosen:
        raise InvalidArgument(
            f"scopes={chosen!r} must be a non-empty subset of {list(SCOPE_NAMES)}; "
            f"unknown: {unknown}"
        )
    missing = [s for s in chosen if s != "http" and SCOPE_CASES[s] is None]
    if missing:
        raise InvalidArgument(
            f"scopes={chosen!r}: this asgifuzz does not generate {missing[0]} cases "
            f"yet; choose among {[s for s in SCOPE_NAMES if s == 'http' or SCOPE_CASES[s]]}"
        )
    return tuple(s for s in SCOPE_NAMES if s in chosen)


def scope_cases(scope: str, **options: Any) -> SearchStrategy[Case]:
    """The cases of ``scope`` (not ``http``), drawn by its registered strategy."""
    make = SCOPE_CASES[scope]
    assert make is not None  # check_scopes refused it
    return make(**options)
