"""Draws that do not depend on which modules the process has imported.

Hypothesis (6.131 on) mixes constants into its draws (one draw in 20 or so):
its own, and those it finds in the source of every "local" module loaded in
``sys.modules`` at the time (not the standard library's, not site-packages',
not test files). So what a seed draws depends on what the process imported
before: `fuzz` called after other code (a pytest session, a notebook) drew
other cases than ``asgifuzz fuzz`` with the same seed, and found other bugs.
Hypothesis has no setting for this, so the fuzz loop draws with no local
constants at all (its global ones stay): ``--seed N`` then draws the same cases
in any process, with asgifuzz installed editable or not. Where Hypothesis has
no local constants (before 6.131), this does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["without_local_constants"]


def _providers() -> Any:
    """Hypothesis's providers module where it draws local constants, or None."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover (a Hypothesis without it)
        return None
    if not hasattr(providers, "_get_local_constants") or not hasattr(
        providers, "CONSTANTS_CACHE"
    ):  # pragma: no cover (before 6.131)
        return None
    return providers


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Within this block, Hypothesis draws none of the local modules' constants
    (not thread-safe: the fuzz loop draws in one thread)."""
    providers = _providers()
    if providers is None:  # pragma: no cover (before 6.131)
        yield
        return
    from hypothesis.internal.constants_ast import Constants

    before = providers._get_local_constants
    none = Constants()
    providers._get_local_constants = lambda: none
    providers.CONSTANTS_CACHE.cache.clear()  # it holds the pools drawn from
    try:
        yield
    finally:
        providers._get_local_constants = before
        providers.CONSTANTS_CACHE.cache.clear()
