"""The fuzz properties, on both backends: every invariant holds for every case,
except the failures the corpus records as known upstream bugs of the installed
Starlette (each replayed as a strict xfail in test_corpus.py).

Plain ``@given`` tests, parametrized with ``pytest.mark.parametrize`` (not a
parametrized fixture): Hypothesis then gives each backend its own database key
(from the test's node id), and so does HypoFuzz, which runs these tests as they
are and shares their example database."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given, target

from asgifuzz._corpus.entries import load_corpus, save_finding, starlette_version
from asgifuzz._oracles.verdict import judge
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case
from asgifuzz.strategies import cases

CORPUS = Path(__file__).parents[2] / "corpus"
VERSION = starlette_version()


@functools.cache
def _known(backend: str) -> frozenset[str]:
    return frozenset(
        e.key
        for e in load_corpus(CORPUS)
        if e.affects(VERSION) and backend in e.backends
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(case=cases())
def test_invariants_hold(backend: str, case: Case) -> None:
    verdict = judge(case, (backend,))
    outcome = verdict.outcomes[backend]
    # Steer toward busy runs: more messages cross more boundaries.
    target(float(len(outcome.recorder.events)), label="events")
    unknown = [v for v in verdict.violations[backend] if v.key not in _known(backend)]
    if unknown:
        # Hypothesis calls this again while it shrinks; the corpus keeps only the
        # smallest case per signature, so corpus/new/ ends with the shrunk one,
        # for a person to review and move up into corpus/ with its status.
        messages = [f"[{v.key}] {v.message}" for v in unknown]
        saved = save_finding(
            CORPUS / "new",
            unknown[0].key,
            case,
            backend,
            messages,
            unknown[0].signature,
        )
        where = f"\n(saved to {saved})" if saved else ""
        raise AssertionError("\n".join(messages) + where)


@given(case=cases())
def test_backends_agree(case: Case) -> None:
    verdict = judge(case)
    known = _known("asyncio") | _known("trio")
    disagreements = [
        v
        for v in verdict.violations.get("both", [])
        if not _explained(verdict.violations, known)
    ]
    assert not disagreements, disagreements[0].message


def _explained(violations: dict[str, list[Violation]], known: frozenset[str]) -> bool:
    """A disagreement that only a known upstream bug explains is not news."""
    keys = {v.key for b in ("asyncio", "trio") for v in violations.get(b, [])}
    return keys <= known
