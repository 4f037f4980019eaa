"""Independent draws: a Hypothesis backend under which every generated case is
drawn afresh.

Hypothesis's own engine spends most of a run's calls on cases it derives from
the one before: after each novel case it runs up to six *mutations* of it
(one span copied over another of the same label), and for the first tenth of
``max_examples`` it runs novel prefixes extended with the simplest choices.
For `cases` that is three calls in four (`benchmarks/results/
time_to_bug-session7.md`): near copies that hold the same rare conjunction of
kinds as the case before, or the simplest case again. A bug that a conjunction
of probability p triggers then takes about 1/p *novel* cases, i.e. four times
as many generated ones.

Under ``settings(backend=BACKEND)`` Hypothesis asks this provider for each
case and nothing else: it is Hypothesis's own provider (the same distributions,
seeded by ``@seed`` through the engine's random), so a seed draws the same
cases, and a failure is replayed, shrunk and saved by Hypothesis as usual (its
engine switches to its own backend for those). What is lost is only the
engine's de-duplication of prefixes, which matters little for cases of a few
hundred choices.
"""

from __future__ import annotations

import os

from hypothesis.internal.conjecture.providers import (
    AVAILABLE_PROVIDERS,
    HypothesisProvider,
)

from asgifuzz._errors import UsageError

__all__ = ["BACKEND", "FRESH_ENV", "IndependentProvider", "fresh_draws", "register"]

#: The backend's name, for ``settings(backend=...)`` (after `register`).
BACKEND = "asgifuzz-independent"
#: ``ASGIFUZZ_DRAWS=fresh``: the fuzz loop's generation rounds use `BACKEND`,
#: and the built-in models' feature sets may be sparse (`asgifuzz.strategies.
#: _swarm`); unset, empty or ``engine``: Hypothesis's own engine draws them. Not
#: the default yet: on Starlette 0.27 with anyio 3 fresh draws reach a real
#: wall-clock hang that the watchdog charges to the user's layer (README).
FRESH_ENV = "ASGIFUZZ_DRAWS"
_VALUES = ("fresh", "engine")


def fresh_draws() -> bool:
    """Whether `FRESH_ENV` asks for fresh draws (``fresh``) rather than the
    engine's (unset, empty or ``engine``); any other value is refused, naming
    the variable."""
    value = os.environ.get(FRESH_ENV, "").strip().lower() or "engine"
    if value not in _VALUES:
        raise UsageError(
            f"{FRESH_ENV}={os.environ[FRESH_ENV]!r} is not one of "
            f"{', '.join(_VALUES)}: set {FRESH_ENV}=fresh for fresh draws, or "
            f"unset it (or {FRESH_ENV}=engine) for Hypothesis's own engine"
        )
    return value == "fresh"


class IndependentProvider(HypothesisProvider):
    """Hypothesis's provider, under a name the engine does not treat as its own
    (so it draws each case afresh: no mutations, no small-example phase)."""


def register() -> str:
    """Make `BACKEND` known to Hypothesis; returns its name."""
    AVAILABLE_PROVIDERS.setdefault(BACKEND, IndependentProvider)
    return BACKEND
