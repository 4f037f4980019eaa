"""The fuzz properties, on both backends: every invariant holds for every case,
except the failures the corpus records as bugs of the installed Starlette (each
replayed as a strict xfail in test_corpus.py), matched the way ``asgifuzz fuzz``
labels its findings (`asgifuzz._corpus.known`).

Plain ``@given`` tests, parametrized with ``pytest.mark.parametrize`` (not a
parametrized fixture): Hypothesis then gives each backend its own database key
(from the test's node id), and so does HypoFuzz, which runs these tests as they
are and shares their example database."""

from __future__ import annotations

import functools
from collections.abc import Collection
from pathlib import Path

import pytest
from hypothesis import given, target

from asgifuzz._corpus.entries import load_corpus, save_finding, starlette_version
from asgifuzz._corpus.known import KnownBug, KnownBugs, known_bugs
from asgifuzz._oracles.failures import failure_of
from asgifuzz._oracles.verdict import Verdict, judge
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case, Layer, Stack
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


@functools.cache
def _all_bugs() -> KnownBugs:
    # Replays each entry that affects the installed Starlette once, to learn the
    # signature it shows here.
    return known_bugs([CORPUS], VERSION)


@functools.cache
def _bugs(backend: str) -> KnownBugs:
    """The known bugs of the installed Starlette that show on ``backend``."""
    on = {e.path.name for e in load_corpus(CORPUS) if backend in e.backends}
    everything = _all_bugs()
    return KnownBugs(
        tuple(b for b in everything.bugs if b.entry in on),
        everything.directories,
        everything.version,
    )


def unexplained(
    verdict: Verdict, backend: str, keys: Collection[str], bugs: KnownBugs
) -> list[Violation]:
    """The violations on ``backend`` that no known bug explains.

    A violation is explained by its key (one of ``keys``), and every violation
    of a case is when the case's failure on ``backend`` (`failure_of`) has a
    known bug's signature as its headline (`KnownBugs.match`): one bug often
    shows several ways (an ``I1:AttributeError`` and the ``I8:escaped`` it
    causes), and ``asgifuzz fuzz`` labels the whole failure by its headline.
    """
    violations = verdict.violations.get(backend, [])
    failure = failure_of({backend: violations}, (backend,))
    if failure is not None and bugs.match(failure.signature, verdict.case):
        return []
    return [v for v in violations if v.key not in keys]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(case=cases())
def test_invariants_hold(backend: str, case: Case) -> None:
    verdict = judge(case, (backend,))
    outcome = verdict.outcomes[backend]
    # Steer toward busy runs: more messages cross more boundaries.
    target(float(len(outcome.recorder.events)), label="events")
    unknown = unexplained(verdict, backend, _known(backend), _bugs(backend))
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
        if any(unexplained(verdict, b, known, _bugs(b)) for b in ("asyncio", "trio"))
    ]
    assert not disagreements, disagreements[0].message


# The two ways a violation is explained, on verdicts built by hand.
_SHOWN = Case(stack=Stack((Layer("bhm.passthrough"),)))
_FRAME = "starlette/middleware/base.py:BaseHTTPMiddleware.__call__"
_HEADLINE = Violation(
    "I1", "the app raised AttributeError", "AttributeError", (_FRAME,)
)
_CAUSED = Violation("I8", "escaped: 'AttributeError' vs 'ValueError'", "escaped")
_OTHER = Violation("I3", "layer 0 read b'' but the client sent b'a'")


def _verdict(*violations: Violation) -> Verdict:
    return Verdict(_SHOWN, violations={"trio": list(violations)})


def _known_as(match: str) -> KnownBugs:
    return KnownBugs(
        (KnownBug("e.json", "known-upstream", "u", "t", frozenset({match})),)
    )


def test_a_known_headline_explains_its_whole_failure() -> None:
    bugs = _known_as("I1:AttributeError@base.py:__call__")
    assert unexplained(_verdict(_HEADLINE, _CAUSED), "trio", (), bugs) == []
    # Not the same key raised elsewhere.
    elsewhere = Violation("I1", "m", "AttributeError", ("app.py:f",))
    assert unexplained(_verdict(elsewhere, _CAUSED), "trio", (), bugs) == [
        elsewhere,
        _CAUSED,
    ]
    # The headline is the failure's, not any violation's: a known I8 does not
    # explain the I1 that heads the failure.
    assert unexplained(
        _verdict(_HEADLINE, _CAUSED), "trio", (), _known_as("I8:escaped#")
    ) == [
        _HEADLINE,
        _CAUSED,
    ]


def test_a_known_key_explains_only_its_own_violations() -> None:
    verdict = _verdict(_HEADLINE, _OTHER)
    assert unexplained(verdict, "trio", {"I1:AttributeError"}, KnownBugs()) == [_OTHER]
    assert unexplained(verdict, "trio", {"I1:AttributeError", "I3"}, KnownBugs()) == []


def test_the_corpus_explains_its_entries_on_their_backends() -> None:
    """Each entry that affects the installed Starlette is explained on each of
    its backends where it shows, by its signature alone (no key given)."""
    shown = 0
    for entry in load_corpus(CORPUS):
        if not entry.affects(VERSION) or entry.targets:
            continue
        for backend in entry.backends:
            verdict = judge(entry.case, (backend,))
            if entry.key in {v.key for v in verdict.violations.get(backend, [])}:
                shown += 1
                assert unexplained(verdict, backend, (), _bugs(backend)) == [], entry
    assert shown or not any(e.affects(VERSION) for e in load_corpus(CORPUS))
