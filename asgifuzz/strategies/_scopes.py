"""The scope types `cases` can draw, and the strategy each is drawn by.

``http`` cases are `cases`' own; every other scope names a function taking
``middleware=``, ``builtin=`` and ``app=`` (as `cases` does) and returning a strategy of
cases of that scope, or None while this build does not generate them. With
``scopes="auto"``, `cases` draws all the scopes its target supports
(`supported_scopes`), weighted by `SCOPE_WEIGHTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from asgifuzz._targets.routes import websocket_paths
from asgifuzz._targets.specs import AppTarget, MiddlewareTarget
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


#: How many of every 10 cases each scope gets when several are drawn
#: (measured with benchmarks/time_to_bug.py: README, "Scopes"). Every known
#: Starlette bug is HTTP's, so the other scopes get a share that costs little.
SCOPE_WEIGHTS = {"http": 8, "websocket": 1, "lifespan": 1}

#: What ``scopes=`` takes: scope names (weighted by `SCOPE_WEIGHTS`), a
#: mapping of names to weights, or `AUTO`: all the target supports.
Scopes = Sequence[str] | Mapping[str, int]
#: ``scopes="auto"`` (``--scope auto``): all the scope types the target supports.
AUTO = "auto"


def scope_weights(scopes: Sequence[str] | Mapping[str, int]) -> dict[str, int]:
    """The scopes chosen and the weight of each, in `SCOPE_NAMES` order (names
    alone get `SCOPE_WEIGHTS`); `InvalidArgument` names what is wrong."""
    if not isinstance(scopes, Mapping):
        return {s: SCOPE_WEIGHTS[s] for s in check_scopes(scopes)}
    given = dict(scopes)
    chosen = check_scopes(list(given))
    bad = {s: w for s, w in given.items() if not isinstance(w, int) or w < 1}
    if bad:
        raise InvalidArgument(
            f"scopes={given!r}: each weight must be an int of at least 1; {bad}"
        )
    return {s: given[s] for s in chosen}


def supported_scopes(
    middleware: Sequence[MiddlewareTarget], app: AppTarget | None
) -> tuple[str, ...]:
    """All the scope types a target supports: the built-in models, all three;
    the user's layers, those every one of them declares (``scopes``, default:
    all three, as an ASGI middleware passes on what it does not handle); an
    app, ``http``, and ``websocket`` where it has a ``WebSocketRoute`` (its own
    lifespan runs around its http runs)."""
    names = set(SCOPE_NAMES)
    for target in middleware:
        names &= set(target.declared.scopes)
    if app is not None:
        names &= {"http", "websocket"} if websocket_paths(app.app) else {"http"}
    return tuple(s for s in SCOPE_NAMES if s in names)


def described(weights: Mapping[str, int]) -> str:
    """``http (8/10), websocket (1/10)`` (one scope: its name), for the run's
    header."""
    if len(weights) == 1:
        return next(iter(weights))
    total = sum(weights.values())
    return ", ".join(f"{s} ({w}/{total})" for s, w in weights.items())
