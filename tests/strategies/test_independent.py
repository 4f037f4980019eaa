"""The independent backend: each case drawn afresh, seeded, and still shrunk."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture.providers import AVAILABLE_PROVIDERS

from asgifuzz._campaign.loop import fuzz
from asgifuzz._campaign.task import Search
from asgifuzz._cli.main import main
from asgifuzz.models import Case
from asgifuzz.strategies import _independent, _swarm, cases


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


def _loop_cases(monkeypatch: pytest.MonkeyPatch, fresh: bool) -> list[str]:
    """The cases `fuzz` generates in 150 (a budget in cases: the same anywhere)."""
    if fresh:
        monkeypatch.setenv(_independent.FRESH_ENV, "fresh")
    else:  # the default
        monkeypatch.delenv(_independent.FRESH_ENV, raising=False)
    seen: list[str] = []

    def noted(case: Case) -> Case:
        seen.append(repr(case))
        return case

    fuzz(
        max_time=120,
        max_cases=150,
        backends=("asyncio",),
        strategy=cases().map(noted),
        search=Search(points=0),
    )
    return seen


def test_the_environment_switches_the_fuzz_loop_to_fresh_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _loop_cases(monkeypatch, fresh=False)
    fresh = _loop_cases(monkeypatch, fresh=True)
    assert len(set(fresh)) > len(set(engine))
    assert fresh == _loop_cases(monkeypatch, fresh=True)  # still seeded


def _layer_counts(sparse_ok: bool) -> list[int]:
    got: list[int] = []

    @settings(max_examples=200, database=None, derandomize=True)
    @given(st.data())
    def one(data: st.DataObject) -> None:
        features = data.draw(st.composite(_swarm.draw_features)(sparse_ok))
        got.append(len(features.layers))

    one()
    return got


def test_sparse_feature_sets_hold_fewer_features() -> None:
    plain, sparse = _layer_counts(False), _layer_counts(True)
    assert sum(sparse) / len(sparse) < sum(plain) / len(plain)


def _sparse_asked(monkeypatch: pytest.MonkeyPatch) -> set[bool]:
    asked: set[bool] = set()
    draw_features = _swarm.draw_features

    def noted(draw: st.DrawFn, sparse_ok: bool = False) -> _swarm.Features:
        asked.add(sparse_ok)
        return draw_features(draw, sparse_ok)

    monkeypatch.setattr(_swarm, "draw_features", noted)
    _drawn("hypothesis", 5)
    return asked


def test_sparse_feature_sets_only_with_fresh_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_independent.FRESH_ENV, "fresh")
    assert _sparse_asked(monkeypatch) == {True}
    monkeypatch.delenv(_independent.FRESH_ENV)
    assert _sparse_asked(monkeypatch) == {False}
    monkeypatch.setenv(_independent.FRESH_ENV, "engine")
    assert _sparse_asked(monkeypatch) == {False}


def test_a_bad_value_is_refused_before_the_first_case(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(_independent.FRESH_ENV, "sometimes")
    argv = ["fuzz", "--max-cases", "5", "--no-database", "--progress", "off"]
    assert main([*argv, "--no-supervisor"]) == 2
    err = capsys.readouterr().err
    assert "ASGIFUZZ_DRAWS='sometimes' is not one of fresh, engine" in err
    assert "ASGIFUZZ_DRAWS=fresh for fresh draws" in err
