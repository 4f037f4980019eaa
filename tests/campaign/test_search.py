"""The search besides drawing: disconnect points from the transcript, the
honest counts (generated cases apart from the other runs), and guidance."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import strategies as st

from asgifuzz import run
from asgifuzz._campaign.findings import FuzzReport
from asgifuzz._campaign.loop import fuzz
from asgifuzz._campaign.novelty import Novelty, features
from asgifuzz._campaign.points import points, spread, variants
from asgifuzz._campaign.tally import Round
from asgifuzz._campaign.task import Search
from asgifuzz._cli.fuzz import config_from_args
from asgifuzz._cli.main import main, parser
from asgifuzz._driver.outcome import Outcome
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets import specs as _targets
from asgifuzz.models import Case, Client, Endpoint, Request, Server
from asgifuzz.models._record import Recorder
from asgifuzz.strategies import cases


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test allows is forgotten after it."""
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))


class ReadsFirst:
    """Pure ASGI, with a bug only a disconnect shows: it reads the first
    message itself and indexes an empty list when that is ``http.disconnect``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        first = [await receive()]
        if first[0]["type"] == "http.disconnect":
            _ = [][0]

        async def again() -> Any:
            return first.pop() if first else await receive()

        await self.app(scope, again, send)


def _never() -> st.SearchStrategy[Case]:
    """Cases through `ReadsFirst` whose client never hangs up."""
    return cases(middleware=[ReadsFirst], builtin=False).map(
        lambda c: replace(c, client=Client())
    )


ECHO = Case(
    endpoint=Endpoint(kind="stream", chunks=3),
    request=Request(method="POST", body=(b"ab", b"cd")),
)


# Disconnect points --------------------------------------------------------------


def test_points_are_the_protocol_points_of_the_transcript_in_order() -> None:
    outcome = run(ECHO, "asyncio")
    # What the server saw, in order: r (a receive() returned), s (start), b (body).
    seen = ""
    for e in outcome.recorder.events:
        if e.where == 0 and e.kind == "receive":
            seen += "r"
        elif e.where == 0 and e.kind == "send" and e.message is not None:
            seen += {"http.response.start": "s", "http.response.body": "b"}.get(
                e.message["type"], ""
            )
    # the two body messages (then a disconnect listener's, on newer Starlette)
    assert seen.count("r") >= 2
    assert seen.count("b") == 4  # a chunk each, then the final empty one
    found = points(outcome)
    protocol = [c for c in found if c.disconnect != "checkpoints"]
    letters = {"receive": "r", "response_start": "s", "body_message": "b"}
    assert "".join(letters[c.disconnect] for c in protocol) == seen
    # Each kind counts its own points from 0.
    for kind in ("receive", "body_message"):
        assert [c.at for c in protocol if c.disconnect == kind] == list(
            range(seen.count(letters[kind]))
        )
    steps = [c.at for c in found if c.disconnect == "checkpoints"]
    assert steps == [n for n in (1, 2, 4, 8) if n < len(outcome.recorder.events)]
    assert steps  # the transcript is longer than one event


def test_zero_copy_sends_are_body_points_the_server_honours() -> None:
    # Two zero-copy sends then the final http.response.body: three body
    # points, and the client of each leaves after that many messages.
    case = Case(
        endpoint=Endpoint("zerocopysend"), server=Server("strict", http_version="2")
    )
    body = [c for c in points(run(case, "asyncio")) if c.disconnect == "body_message"]
    assert [c.at for c in body] == [0, 1, 2]
    for client in body[:2]:  # leaving before the last: the response is cut short
        got = run(replace(case, client=client), "asyncio").response
        assert (got.body_messages, got.complete) == (client.at + 1, False)


def test_spread_keeps_the_ends_and_at_most_the_limit() -> None:
    items = [Client("receive", i) for i in range(40)]
    picked = spread(items, 16)
    assert len(picked) == 16
    assert (picked[0], picked[-1]) == (items[0], items[-1])
    gaps = {b.at - a.at for a, b in itertools.pairwise(picked)}
    assert gaps <= {2, 3}  # evenly spread
    assert spread(items[:5], 16) == items[:5]
    assert spread(items, 1) == items[:1]
    assert spread(items, 0) == []


def test_variants_only_for_a_client_that_never_hangs_up() -> None:
    outcome = run(ECHO, "asyncio")
    made = variants(ECHO, outcome, 16)
    assert 0 < len(made) <= 16
    assert all(v.client.disconnect != "never" for v in made)
    assert {replace(v, client=Client()) for v in made} == {ECHO}
    assert variants(replace(ECHO, client=Client("receive", 0)), outcome) == []
    assert variants(ECHO, outcome, 0) == []
    only = [Client("response_start")]
    assert [v.client for v in variants(ECHO, outcome, 16, only)] == only
    assert variants(ECHO, outcome, 16, []) == []


def test_points_find_a_bug_that_needs_a_disconnect_and_save_an_ordinary_case() -> None:
    report = fuzz(max_time=1.0, backends=("asyncio",), strategy=_never())
    (finding,) = [f for f in report.findings if f.key == "I1:IndexError"]
    assert finding.case.client.disconnect != "never"
    assert report.point_runs > 0
    # The finding's case fails by itself, the same way.
    verdict = judge(finding.case, ("asyncio",))
    assert "I1:IndexError" in {v.key for v in verdict.violations["asyncio"]}
    # Without the points, nothing draws a disconnect here.
    off = fuzz(
        max_time=1.0,
        backends=("asyncio",),
        strategy=_never(),
        search=Search(points=0),
    )
    assert not [f for f in off.findings if f.key == "I1:IndexError"]
    assert off.point_runs == 0


# Honest counts -------------------------------------------------------------------


def test_generated_cases_are_counted_apart_from_shrinking() -> None:
    calls: list[int] = []
    report = fuzz(
        max_time=1.0,
        backends=("asyncio",),
        strategy=_never(),
        on_case=lambda r, seen: calls.append(r.cases),
    )
    assert report.findings  # so something was shrunk
    assert report.shrink_runs > 0
    assert report.cases < len(calls)
    assert report.cases + report.shrink_runs + report.replay_runs >= len(calls)
    assert sum(report.outcomes.values()) == report.cases  # one backend
    assert 0 < report.generation_s <= report.elapsed
    assert report.cases_per_second == pytest.approx(report.cases / report.generation_s)
    assert all(f.first_seen_cases <= report.cases for f in report.findings)
    data = report.to_data()
    assert (data["cases"], data["shrink_runs"]) == (report.cases, report.shrink_runs)
    assert "generated cases" in data["counts"]
    assert report.runs().startswith(f"{report.cases} generated cases (+ ")


def _phase(*statuses: str, seconds: float = 1.0) -> dict[str, Any]:
    return {
        "duration-seconds": seconds,
        "test-cases": [{"status": s} for s in statuses],
    }


def test_a_round_tells_its_calls_apart_by_hypothesis_statistics() -> None:
    report = FuzzReport(backends=("asyncio",))
    report.cases = 10
    this = Round(report, max_examples=5)
    for n, kind in enumerate(["reuse", "gen", "gen", "gen", "shrink", "shrink"]):
        this.call((f"asyncio:{kind}",), n % 2, 0.0)
    assert report.cases == 15  # provisionally, no more than max_examples
    assert this.counting() == 15
    this.stats = {
        "reuse-phase": _phase("valid"),
        "generate-phase": _phase("valid", "overrun", "interesting", seconds=2.0),
        "target-phase": _phase("valid", seconds=0.5),
        "shrink-phase": _phase("valid"),
    }
    first_seen = {"a": (1.0, 15), "b": (1.0, 11)}
    this.settle(first_seen)
    assert report.cases == 13
    assert (report.replay_runs, report.point_runs, report.shrink_runs) == (1, 2, 3)
    assert report.generation_s == 2.5
    assert report.outcomes == Counter({"asyncio:gen": 3})
    assert first_seen == {"a": (1.0, 13), "b": (1.0, 11)}


def test_a_live_count_never_shows_shrinking_as_generation() -> None:
    report = FuzzReport(backends=("asyncio",))
    report.outcomes["asyncio:old"] = 4
    this = Round(report, max_examples=2)
    for n, kind in enumerate(["gen", "gen", "shrink", "shrink"]):
        this.call((f"asyncio:{kind}",), n, 0.0)
        # what a snapshot taken now would show
        assert sum(report.outcomes.values()) == 4 + min(n + 1, 2)
    assert report.outcomes == Counter({"asyncio:old": 4, "asyncio:gen": 2})
    assert (report.point_runs, report.shrink_runs) == (0 + 1, (1 + 2) + (1 + 3))
    this.stats = {"generate-phase": _phase("valid", "valid")}
    this.settle({})
    assert report.outcomes == Counter({"asyncio:old": 4, "asyncio:gen": 2})
    assert (report.point_runs, report.shrink_runs) == (1, 7)


def test_a_round_without_statistics_counts_up_to_max_examples() -> None:
    report = FuzzReport(backends=("asyncio",))
    this = Round(report, max_examples=2)
    for _ in range(3):
        this.call(("asyncio:response",), 0, 0.0)
    this.settle({})
    assert (report.cases, report.shrink_runs, report.replay_runs) == (2, 1, 0)
    assert report.outcomes == Counter({"asyncio:response": 2})


# Guidance ------------------------------------------------------------------------


def test_novelty_counts_features_not_seen_before() -> None:
    outcome = run(ECHO, "asyncio")
    found = features(outcome)
    shapes = {f for f in found if f[0] == "shape"}
    assert {where for _, where, _ in shapes} == set(
        range(len(outcome.recorder.boundaries))
    )
    assert any("s:response.start" in text for _, _, text in shapes)
    novelty = Novelty()
    assert novelty.score([outcome]) == len(found)
    assert novelty.score([outcome]) == 0.0  # seen
    gone = run(replace(ECHO, client=Client("receive", 0)), "asyncio")
    assert novelty.score([gone]) > 0


def test_novelty_sees_exceptions_and_cancellations_crossing_boundaries() -> None:
    rec = Recorder()
    rec.log(1, "receive", {"type": "http.request", "body": b"", "more_body": True})
    rec.log(1, "receive", {"type": "http.request", "body": b"", "more_body": True})
    rec.log(1, "raise", detail="Cancelled", exc_type="Cancelled")
    rec.log(0, "raise", detail="ValueError: x", exc_type="ValueError")
    rec.note("a note is no boundary's")
    found = features(Outcome(case=Case(), backend="trio", recorder=rec))
    assert found == {
        ("shape", 1, "r:request+ x:Cancelled"),  # repeats folded
        ("shape", 0, "x:ValueError"),
        ("crossed", 1, "Cancelled"),
        ("cancelled", 1, ""),
        ("crossed", 0, "ValueError"),
    }


def test_the_points_option_takes_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fuzz", "--points", "many"])
    assert exc.value.code == 2
    assert "--points: 'many': need a number of points, 0 or more" in (
        capsys.readouterr().err
    )
    args = parser("fuzz").parse_args(["fuzz", "--points", "0"])
    assert config_from_args(args).search == Search(points=0)
    assert config_from_args(parser("fuzz").parse_args(["fuzz"])).search == Search()
