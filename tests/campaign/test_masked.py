"""A second bug masked by a reported one: the loop keeps a case for any new
signature of its failure, not only for its headline's, and drops it again when
its shrunk case is still headlined by the reported bug (one cause)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import strategies as st

from asgifuzz._campaign.failing import Masking
from asgifuzz._campaign.findings import Finding
from asgifuzz._campaign.loop import fuzz
from asgifuzz._corpus.known import KnownBug, KnownBugs, match_key
from asgifuzz._oracles.failures import failure_of
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets import specs as _targets
from asgifuzz.models import Case, Client, Endpoint, Request
from asgifuzz.strategies import cases

A = Violation("I1", "the app raised IndexError", "IndexError", ("a.py:f",))
B = Violation("I3", "the endpoint read other bytes", "")
C = Violation("I7", "a generator was left open", "asyncgen", ("c.py:g",))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test allows is forgotten after it."""
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))


def test_a_new_headline_is_kept_as_it_is() -> None:
    failure = failure_of({"asyncio": [A, B]}, ("asyncio",))
    assert Masking().keep(failure, None, skip=set()) is failure
    assert Masking().keep(None, None, skip=set()) is None


def test_a_reported_headline_gives_way_to_the_first_new_signature() -> None:
    failure = failure_of({"asyncio": [A, B, C]}, ("asyncio",))
    assert failure is not None
    masking = Masking()
    got = masking.keep(failure, None, skip={A.signature})
    assert got is not None
    assert (got.signature, got.masked) == (B.signature, A.signature)
    assert got.keys == ("I3", "I1:IndexError", "I7:asyncgen")
    # B reported too, or found to be A's symptom: C's turn; then nothing.
    again = masking.keep(failure, None, skip={A.signature, B.signature})
    assert again is not None
    assert again.signature == C.signature
    masking.symptoms.add(B.signature)
    again = masking.keep(failure, None, skip={A.signature})
    assert again is not None
    assert again.signature == C.signature
    assert masking.keep(failure, None, skip={A.signature, C.signature}) is None


def test_a_signature_among_a_findings_keys_is_not_kept_behind_it() -> None:
    # A's finding already lists B among its keys: one cause, nothing new.
    failure = failure_of({"asyncio": [A, B]}, ("asyncio",))
    assert failure is not None
    masking = Masking()
    masking.listing([Finding.of(failure, Case())])
    assert masking.keep(failure, None, skip={A.signature}) is None


def test_a_signature_kept_only_behind_another_is_still_kept_as_a_headline() -> None:
    # B was kept behind A; a case headlined by B itself is kept too (its own
    # shrunk case decides), and once it is, B is reported like any other.
    masking = Masking()
    behind = failure_of({"asyncio": [A, B]}, ("asyncio",))
    alone = failure_of({"asyncio": [B]}, ("asyncio",))
    assert behind is not None
    assert alone is not None
    masking.found(behind.headed(B.signature), None)
    reported = {A.signature, B.signature}
    assert masking.keep(alone, None, skip=reported) is alone
    masking.found(alone, None)
    assert masking.keep(alone, None, skip=reported) is None


def test_a_shrunk_case_still_headlined_by_the_reported_bug_is_its_symptom() -> None:
    failure = failure_of({"asyncio": [A, B]}, ("asyncio",))
    alone = failure_of({"asyncio": [B]}, ("asyncio",))
    assert failure is not None
    assert alone is not None
    masking = Masking()
    kept = failure.headed(B.signature)
    assert masking.symptom(kept, None, reported={A.signature})
    assert not masking.symptom(kept, None, reported=set())
    assert not masking.symptom(alone, None, reported={A.signature})
    assert masking.drop(B.signature)  # no case had B as its headline
    masking.found(alone, None)
    assert not masking.drop(B.signature)  # one did: its finding stays


# The loop, on a layer with two bugs ----------------------------------------------


class TwoBugs:
    """Pure ASGI. Bug A: raises IndexError on the response's start when the
    request has a query string (I1). Bug B: empties the request body when a
    header says so (I3, ranked after I1)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        emptied = (b"x-empty", b"1") in scope["headers"]

        async def wrapped() -> Any:
            message = await receive()
            if emptied and message["type"] == "http.request":
                message = {**message, "body": b""}
            return message

        async def sending(message: Any) -> None:
            if scope["query_string"] and message["type"] == "http.response.start":
                _ = [][0]
            await send(message)

        await self.app(scope, wrapped, sending)


def _case(base: Case, query: bool, empty: bool) -> Case:
    headers = (("x-empty", "1"),) if empty else ()
    request = Request(
        "POST", query="q=1" if query else "", body=(b"ab",), headers=headers
    )
    return replace(
        base, endpoint=Endpoint(kind="echo"), request=request, client=Client()
    )


def _run(mapping: Any) -> tuple[list[Any], list[Case]]:
    """The findings of the loop's 120 cases of `TwoBugs` (``mapping(n)``: which
    bugs a case has), and the cases drawn."""
    seen: list[Case] = []

    def noted(case: Case) -> Case:
        seen.append(case)
        return case

    base = cases(middleware=[TwoBugs], builtin=False, swarm=False)
    strategy = st.tuples(base, st.integers(1, 10**9)).map(
        lambda t: noted(_case(t[0], *mapping(t[1])))
    )
    report = fuzz(max_cases=120, backends=("asyncio",), strategy=strategy)
    mine = [f for f in report.findings if "TwoBugs" in f.signature or f.key == "I3"]
    return mine, seen


def _a_b_or_both(n: int) -> tuple[bool, bool]:
    """(A, B) for ``n``: B alone at 2 (clean at 1, the simplest case, which
    Hypothesis draws first), else clean, A or both, by ``n % 3`` (some clean
    cases: a target that fails every case is a misconfiguration)."""
    if n < 3:
        return False, n == 2
    return n % 3 > 0, n % 3 == 2


def test_a_bug_kept_behind_another_is_still_found_and_shrunk_alone() -> None:
    # Cases of A and B come before and beside those of B alone: keeping one
    # for B (behind A) must not hide the cases of B alone, whichever the
    # shrinker of B's first case ends on.
    mine, _ = _run(_a_b_or_both)
    assert sorted(f.key for f in mine) == ["I1:IndexError", "I3"], mine
    (b,) = [f for f in mine if f.key == "I3"]
    assert b.case.request.query == ""  # shrunk to B alone
    assert b.keys == ("I3",)


def test_a_bug_that_never_shows_alone_is_listed_with_the_other() -> None:
    # B only ever comes with A: its case shrinks to one still headlined by A,
    # so it is A's symptom, not a second finding.
    mine, _ = _run(lambda n: (n % 3 > 0, n % 3 == 2))
    assert [f.key for f in mine] == ["I1:IndexError"], [(f.key, f.case) for f in mine]


def test_a_finding_kept_behind_a_known_bug_is_not_labelled_as_that_bug() -> None:
    # A is a corpus entry; B, kept behind it, is not: its finding is new, not
    # "the same known bug" as A (which would merge it into A's finding).
    failure = failure_of({"asyncio": [A, B]}, ("asyncio",))
    assert failure is not None
    kept = failure.headed(B.signature)
    matches = frozenset({match_key(A.signature, Case())})
    known = KnownBugs(
        (KnownBug("a.json", "known-upstream", "https://x.invalid/a", "t", matches),)
    )
    finding = Finding.of(kept, Case())
    finding.label(known, masked=kept.masked)
    assert (finding.status, finding.entry) == ("new", "")
    finding.label(known)  # by any of its signatures, A's among them
    assert finding.entry == "a.json"
