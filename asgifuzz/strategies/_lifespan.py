"""Lifespan sessions: cases whose server runs the lifespan protocol through the
stack before and after the request (`asgifuzz.models.Lifespan`).

`lifespan_cases` turns any strategy of model cases (the built-in stacks, or
stacks over the user's middleware: `asgifuzz.strategies.cases`) into one of
sessions, so a scope option can route ``lifespan`` to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from asgifuzz.models import Case, Endpoint, Layer, Stack
from asgifuzz.models._lifespan import (
    LIFESPAN_APPS,
    PHASES,
    STATE_KEYS,
    Lifespan,
)
from asgifuzz.strategies._cases import cases
from asgifuzz.strategies._scopes import SCOPE_CASES

#: The lifespan layers drawn by default: ``lifespan.handle`` is wrong on
#: purpose (it answers for the app), so only ``handle=True`` draws it.
_CORRECT = ("lifespan.wrap",)


def lifespans() -> st.SearchStrategy[Lifespan]:
    """What the app does at startup and shutdown: the app's kind, each phase
    (complete, fail, raise, hang), the failure's message and the state keys.

    Shrinks toward a Starlette app whose startup and shutdown complete and
    whose startup writes no state.
    """
    return st.builds(
        Lifespan,
        app=st.sampled_from(LIFESPAN_APPS),
        startup=st.sampled_from(PHASES),
        shutdown=st.sampled_from(PHASES),
        message=st.sampled_from(("startup failed", "")),
        state=st.lists(st.sampled_from(STATE_KEYS), max_size=2, unique=True).map(tuple),
    )


@st.composite
def _sessions(
    draw: st.DrawFn, base: st.SearchStrategy[Case], kinds: tuple[str, ...]
) -> Case:
    case = draw(base)
    if case.app:
        raise InvalidArgument(
            f"lifespan_cases() got a case with app={case.app!r}; a lifespan session "
            "runs the model app (a user's app runs its own lifespan around each "
            "run): pass a strategy of cases without app="
        )
    layers = list(case.stack.layers)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(layers)))
        layers.insert(at, Layer(draw(st.sampled_from(kinds))))
    return replace(
        case,
        stack=Stack(tuple(layers), case.stack.mode),
        endpoint=Endpoint(),
        lifespan=draw(lifespans()),
    )


def lifespan_cases(
    base: st.SearchStrategy[Case] | None = None, *, handle: bool = False
) -> st.SearchStrategy[Case]:
    """Lifespan sessions: each case of ``base`` (default:
    `asgifuzz.strategies.cases`) with a drawn `asgifuzz.models.Lifespan` and
    zero to two ``lifespan.wrap`` layers put into its stack at drawn places
    (``handle=True`` draws the wrong ``lifespan.handle`` too). The endpoint is
    the session's model app. Shrinks toward the base case's shrinks, no extra
    layer and a lifespan that completes.
    """
    kinds = (*_CORRECT, "lifespan.handle") if handle else _CORRECT
    return _sessions(base if base is not None else cases(scopes=["http"]), kinds)


def lifespan_scope_cases(
    *, middleware: Any = None, builtin: bool | Sequence[str] = True, app: Any = None
) -> st.SearchStrategy[Case]:
    """The ``lifespan`` scope's cases, as a scope registry calls for them:
    sessions over the built-in stacks, or over stacks of the user's
    ``middleware`` mixed with ``builtin`` layers (as `cases` takes them). A
    user's ``app`` is refused: a session runs the model app, and an app's own
    lifespan already runs around each of its http runs."""
    if app is not None:
        raise InvalidArgument(
            "scopes=['lifespan'] with app=: a lifespan session runs the model app; "
            "your app's own lifespan already runs around each of its http runs "
            "(drop 'lifespan' from the scopes, or fuzz your middleware alone)"
        )
    return lifespan_cases(
        cases(middleware=middleware, builtin=builtin, scopes=["http"])
    )


# The scope registry names no strategy of its own for lifespan: its sessions are
# drawn from `cases`, which imports the registry, so this module fills it in.
SCOPE_CASES["lifespan"] = lifespan_scope_cases
