"""Findings are bugs, not keys: signatures, one root cause under several keys,
I10 as an attribute, merging across rounds and workers, and two fuzz runs on
stacks of middleware written here with known bugs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from asgifuzz._campaign import failing as _failing
from asgifuzz._campaign.failing import CaseFailed, failed
from asgifuzz._campaign.findings import Finding, FuzzReport, merge_findings
from asgifuzz._campaign.loop import fuzz
from asgifuzz._campaign.task import Search
from asgifuzz._campaign.workers import merge
from asgifuzz._cli.main import main
from asgifuzz._oracles.failures import failure_of, short_signature
from asgifuzz._oracles.verdict import violation_class
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets import specs as _targets
from asgifuzz.models import Case, Request
from asgifuzz.strategies import cases

BOTH = ("asyncio", "trio")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test allows is forgotten after it."""
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))


# Middleware with bugs, written for these tests -----------------------------------


class QueryIndex(BaseHTTPMiddleware):
    """Bug 1: looks up the first query parameter that is not there."""

    async def dispatch(self, request: StarletteRequest, call_next: Any) -> Response:
        if request.url.query:
            return [][0]
        response: Response = await call_next(request)
        return response


class MethodIndex(BaseHTTPMiddleware):
    """Bug 2, the same exception elsewhere: indexes an empty list on POST."""

    async def dispatch(self, request: StarletteRequest, call_next: Any) -> Response:
        if request.method == "POST":
            _ = [][int(bool(request.method))]
        response: Response = await call_next(request)
        return response


class ErrorPages:
    """Pure ASGI: gives error responses a page of its own, looked up by status
    class in a table one entry short, so that a 5xx raises IndexError while the
    app's own exception is being answered: one bug, seen as I1:IndexError (an
    exception nobody's model raised) and I6:swallowed (the app's exception did
    not come out)."""

    PAGES = (b"", b"", b"", b"", b"not found")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        page: bytes | None = None

        async def paged(message: Any) -> None:
            nonlocal page
            if message["type"] == "http.response.start" and message["status"] >= 400:
                page = self.PAGES[message["status"] // 100]
                length = (b"content-length", str(len(page)).encode())
                kept = [h for h in message["headers"] if h[0] != b"content-length"]
                message = {**message, "headers": [*kept, length]}
            elif message["type"] == "http.response.body" and page is not None:
                message = {**message, "body": page}
            await send(message)

        await self.app(scope, receive, paged)


# Signatures and the grouping of one case's violations ----------------------------

INDEX = Violation(
    "I1",
    "the app raised IndexError",
    "IndexError",
    ("starlette/middleware/errors.py:ServerErrorMiddleware.__call__", "app.py:A.f"),
)
SWALLOWED = Violation("I6", "ModelError was swallowed", "swallowed")
ESCAPED = Violation("I8", "something else escapes", "escaped")


def test_a_signature_is_the_key_and_the_innermost_frame() -> None:
    assert INDEX.signature == "I1:IndexError@app.py:A.f"
    assert SWALLOWED.signature == SWALLOWED.key == "I6:swallowed"
    other_caller = replace(
        INDEX, frames=("base.py:BaseHTTPMiddleware.__call__", "app.py:A.f")
    )
    assert other_caller.signature == INDEX.signature  # the layers above do not count
    assert replace(INDEX, frames=("app.py:B.f",)).signature != INDEX.signature


def test_one_root_cause_is_one_failure_with_all_its_keys() -> None:
    both = [ESCAPED, INDEX, SWALLOWED]  # in the order the checks found them
    failure = failure_of({"asyncio": both, "trio": list(both)}, BOTH)
    assert failure is not None
    assert failure.keys == ("I1:IndexError", "I6:swallowed", "I8:escaped")
    assert (failure.key, failure.signature) == ("I1:IndexError", INDEX.signature)
    assert failure.seen_on == "asyncio and trio"
    # Each message once, naming its backends once.
    assert failure.messages == [
        "[I1:IndexError] the app raised IndexError (on asyncio and trio)",
        "[I6:swallowed] ModelError was swallowed (on asyncio and trio)",
        "[I8:escaped] something else escapes (on asyncio and trio)",
    ]
    assert failure_of({"asyncio": [], "trio": []}, BOTH) is None


def test_i10_is_an_attribute_unless_nothing_else_failed() -> None:
    i10 = Violation("I10", "the backends disagree (asyncio: ['I6:swallowed']; ...)")
    one_side = failure_of({"asyncio": [SWALLOWED], "trio": [], "both": [i10]}, BOTH)
    assert one_side is not None
    assert (one_side.keys, one_side.seen_on) == (("I6:swallowed",), "asyncio only")
    alone = failure_of({"asyncio": [], "trio": [], "both": [i10]}, BOTH)
    assert alone is not None
    assert (alone.key, alone.backends) == ("I10", BOTH)
    # A run on one backend only says which, without "only".
    assert failure_of({"trio": [SWALLOWED]}, ("trio",)).seen_on == "trio"  # type: ignore[union-attr]


def test_a_signature_seen_on_both_backends_with_other_words_is_on_both() -> None:
    hang = Violation("I4", "last event #2", "response")
    failure = failure_of(
        {"asyncio": [hang], "trio": [replace(hang, message="last event #3")]}, BOTH
    )
    assert failure is not None
    assert failure.seen_on == "asyncio and trio"
    assert failure.messages == [
        "[I4:response] last event #2 (on asyncio)",
        "[I4:response] last event #3 (on trio)",
    ]


def test_short_signatures_for_progress() -> None:
    assert short_signature(INDEX.signature) == "I1:IndexError@A.f"
    assert short_signature("I3") == "I3"


# One exception class per signature, for Hypothesis ------------------------------


def _failure(violation: Violation) -> Any:
    return failure_of({"asyncio": [violation]}, ("asyncio",))


def test_each_signature_raises_its_own_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_failing, "_CLASSES", {})
    a, b = failed(_failure(INDEX), Case()), failed(_failure(INDEX), Case())
    c = failed(_failure(replace(INDEX, frames=("app.py:B.f",))), Case())
    assert type(a) is type(b) is not type(c)
    assert isinstance(c, CaseFailed)
    assert isinstance(c, violation_class("I1:IndexError"))
    assert c.failure.signature == "I1:IndexError@app.py:B.f"
    # Bounded: past the limit, new signatures share their key's class.
    monkeypatch.setattr(_failing, "MAX_CLASSES", 2)
    d = failed(_failure(replace(INDEX, frames=("app.py:C.f",))), Case())
    e = failed(_failure(replace(INDEX, frames=("app.py:D.f",))), Case())
    assert type(d) is type(e) not in (type(a), type(c))


# Merging: across rounds and across workers -----------------------------------------


def _finding(signature: str, case: Case, first_seen_s: float) -> Finding:
    return Finding(
        "I1:IndexError",
        "asyncio",
        ["m"],
        case,
        signature=signature,
        first_seen_s=first_seen_s,
        first_seen_cases=int(first_seen_s * 10),
    )


def test_merge_keeps_one_finding_per_signature_and_keys_apart() -> None:
    small, big = Case(), Case(request=Request(body=(b"x" * 50,)))
    a = FuzzReport(BOTH, cases=3, elapsed=1.0)
    a.findings = [
        _finding("I1:IndexError@a.py:f", big, 0.2),
        _finding("I1:IndexError@a.py:g", big, 0.5),
    ]
    b = FuzzReport(BOTH, cases=4, elapsed=2.0)
    b.findings = [_finding("I1:IndexError@a.py:f", small, 0.9)]
    merged = merge([a, b])
    assert [f.signature for f in merged.findings] == [
        "I1:IndexError@a.py:f",
        "I1:IndexError@a.py:g",
    ]
    first = merged.findings[0]
    assert (first.case, first.first_seen_s, first.first_seen_cases) == (small, 0.2, 2)
    assert merge_findings([]) == []


def test_a_finding_made_by_hand_defaults_to_its_key() -> None:
    f = Finding("I3", "trio", ["m"], Case())
    assert (f.signature, f.keys, f.backends, f.seen_on, f.status) == (
        "I3",
        ("I3",),
        ("trio",),
        "trio",
        "new",
    )
    data = f.to_data()
    assert (data["status"], "upstream" in data, data["keys"]) == ("new", False, ["I3"])


# Two fuzz runs on stacks with known bugs ------------------------------------------


def test_two_different_bugs_with_one_key_are_both_reported() -> None:
    strategy = cases(middleware=[QueryIndex, MethodIndex], builtin=False)
    # The second bug comes in the second round (case 52 with seed 0). A budget
    # in cases, not seconds: the same cases on a loaded machine (the time is a
    # bound only). Without disconnect points: this tests the grouping, not the
    # search.
    report = fuzz(
        max_time=60.0,
        max_cases=300,
        backends=("asyncio",),
        strategy=strategy,
        search=Search(points=0),
    )
    index = {f.signature: f for f in report.findings if f.key == "I1:IndexError"}
    assert sorted(index) == [
        "I1:IndexError@test_findings.py:MethodIndex.dispatch",
        "I1:IndexError@test_findings.py:QueryIndex.dispatch",
    ]
    query = index["I1:IndexError@test_findings.py:QueryIndex.dispatch"].case
    method = index["I1:IndexError@test_findings.py:MethodIndex.dispatch"].case
    # Each shrunk to its own trigger.
    assert (bool(query.request.query), query.request.method) == (True, "GET")
    assert (bool(method.request.query), method.request.method) == (False, "POST")


def test_one_root_cause_is_reported_once_with_its_keys() -> None:
    # The bug needs a stack that wraps the app and an endpoint that raises: one
    # case in 20 or so (found after 47 to 90 cases with seeds 0 to 2). A budget
    # in cases, not seconds, so that a loaded machine draws the same ones (a
    # 3 s budget once missed the bug in CI). Without swarm generation (this
    # tests the grouping, not the search): with it, seed 0's first cases bring
    # the bug, but no case of it that also shows I6:swallowed. In this process,
    # after the suite's other tests: the draws no longer depend on the modules
    # they imported (`test_deferred`, `asgifuzz._campaign.constants`).
    strategy = cases(middleware=[ErrorPages], builtin=False, swarm=False)
    report = fuzz(max_time=60.0, max_cases=200, backends=BOTH, strategy=strategy)
    # (Starlette's own bugs of an old release, found beside it, are other findings.)
    mine = [f for f in report.findings if "ErrorPages" in f.signature]
    assert len(mine) == 1, (
        [(f.key, f.signature, f.case) for f in report.findings],
        report.misconfigured,
        report.cases,
    )
    (finding,) = mine
    assert finding.key == "I1:IndexError"
    assert finding.keys == ("I1:IndexError", "I6:swallowed")
    assert finding.signature == (
        "I1:IndexError@test_findings.py:ErrorPages.__call__.<locals>.paged"
    )
    assert finding.seen_on == "asyncio and trio"
    assert len(finding.messages) == 2  # one per key, not one per key and backend


def test_the_terminal_says_how_to_replay_a_finding_of_the_users_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    args = ["fuzz", "--no-supervisor", "--max-time", "0.3", "--backend", "asyncio"]
    args += ["--no-database", "--no-known", "--no-builtin", "--corpus", str(corpus)]
    args += ["--config", str(tmp_path / "none.toml")]
    # Any finding (the user's IndexError, or Starlette's seen first) names
    # their code, and --fail-on any makes either fail the run.
    args += ["--fail-on", "any"]
    assert main([*args, "--middleware", "test_findings:QueryIndex"]) == 1
    printed = capsys.readouterr().out
    entry = sorted(corpus.glob("*.json"))[0]  # each entry names user.QueryIndex
    assert "user.QueryIndex" in entry.read_text()
    assert (
        f"  replay: asgifuzz replay {entry} --backend asyncio --trace "
        "--middleware test_findings:QueryIndex\n"
    ) in printed
