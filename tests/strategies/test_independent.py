"""The independent backend: each case drawn afresh, seeded, and still shrunk."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture.providers import AVAILABLE_PROVIDERS

from asgifuzz.models import Case
from asgifuzz.strategies import _independent, cases


def _drawn(backend: str, n: int, seed_: int = 3) -> list[str]:
    """The ``repr`` of ``n`` cases generated under ``backend`` (as fuzz draws:
    explicit and generate phases only)."""
    out: list[str] = []

    @settings(
        backend=backend,
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_)
    @given(cases())
    def one(case: Case) -> None:
        out.append(repr(case))

    one()
    return out


def test_register_names_the_backend_once() -> None:
    name = _independent.register()
    assert name == _independent.BACKEND
    assert AVAILABLE_PROVIDERS[name] is _independent.IndependentProvider
    assert _independent.register() == name  # again: the same entry


def test_cases_are_drawn_afresh() -> None:
    # Hypothesis's engine runs mutations of each novel case (a span copied over
    # another of its label) and small cases first: many near or exact repeats.
    independent = _drawn(_independent.register(), 200)
    engine = _drawn("hypothesis", 200)
    assert len(set(independent)) >= 195
    assert len(set(engine)) < len(set(independent))


def test_a_seed_draws_the_same_cases() -> None:
    backend = _independent.register()
    assert _drawn(backend, 30, seed_=7) == _drawn(backend, 30, seed_=7)
    assert _drawn(backend, 30, seed_=7) != _drawn(backend, 30, seed_=8)


def test_a_failure_is_still_shrunk() -> None:
    @settings(backend=_independent.register(), database=None, max_examples=500)
    @seed(0)
    @given(st.lists(st.integers(0, 1000)))
    def check(xs: list[int]) -> None:
        assert sum(xs) < 700

    with pytest.raises(AssertionError) as info:
        check()
    # Hypothesis's shrinker (on its own backend) took it to the minimal list.
    assert "xs=[700]" in "\n".join(getattr(info.value, "__notes__", []))
