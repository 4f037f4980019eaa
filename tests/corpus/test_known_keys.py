"""A finding is a known bug when any of its signatures matches a corpus entry,
not only its headline's: one root cause shows under several keys, and the key
that outranks the others need not be the one the entry records."""

from __future__ import annotations

from pathlib import Path

from asgifuzz._campaign.findings import Finding, FuzzReport
from asgifuzz._campaign.report import RunInfo, junit_xml
from asgifuzz._corpus.entries import load_entry
from asgifuzz._corpus.known import KnownBug, KnownBugs, known_bugs
from asgifuzz._oracles.failures import failure_of
from asgifuzz._oracles.verdict import judge
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import case_from_data

CORPUS = Path(__file__).parents[2] / "corpus"
#: Discussion #2094: a BaseHTTPMiddleware hides http.disconnect from an
#: endpoint polling request.is_disconnected() (I9:endpoint), 0.21.0 to 1.10.0.
HIDDEN = CORPUS / "bhm-hides-disconnect-from-is-disconnected.json"
HIDDEN_CASE = load_entry(HIDDEN).case


def _bug(name: str, status: str, match: str) -> KnownBug:
    return KnownBug(
        name, status, f"https://example.invalid/{name}", "t", frozenset({match})
    )


def _escaped() -> Finding:
    return Finding(
        "I8:escaped-",
        "asyncio",
        ["[I8:escaped-] m", "[I9:endpoint] m"],
        HIDDEN_CASE,
        keys=("I8:escaped-", "I9:endpoint"),
        signatures=("I8:escaped-", "I9:endpoint"),
    )


def test_a_finding_is_known_by_a_signature_other_than_its_headline() -> None:
    known = KnownBugs((_bug("hidden.json", "known-upstream", "I9:endpoint#"),))
    finding = _escaped()
    finding.label(known)
    assert (finding.status, finding.entry, finding.matched) == (
        "known-upstream",
        "hidden.json",
        "I9:endpoint",
    )
    assert finding.describe_status() == (
        "known upstream (https://example.invalid/hidden.json, by I9:endpoint)"
    )
    data = finding.to_data()
    assert (data["status"], data["matched"]) == ("known-upstream", "I9:endpoint")
    report = FuzzReport(("asyncio",), cases=1, elapsed=1.0, findings=[finding])
    xml = junit_xml(RunInfo(report, {}, {})).decode()
    assert '<property name="matched" value="I9:endpoint" />' in xml


def test_the_headline_is_matched_first() -> None:
    known = KnownBugs(
        (
            _bug("hidden.json", "known-upstream", "I9:endpoint#"),
            _bug("ours.json", "new", "I8:escaped-#"),
        )
    )
    finding = _escaped()
    finding.label(known)
    assert (finding.status, finding.entry, finding.matched) == (
        "new",
        "ours.json",
        "I8:escaped-",
    )
    # Named by its entry alone when the headline matched.
    assert finding.describe_status() == "new (corpus entry ours.json)"
    # None of its signatures: new, nothing named.
    alone = Finding("I3", "asyncio", ["m"], HIDDEN_CASE)
    alone.label(known)
    assert (alone.status, alone.entry, alone.matched) == ("new", "", "")


def test_a_finding_of_several_keys_is_the_entry_one_of_them_is() -> None:
    # As the 120 s run on 1.10.0 showed it (before I8 stopped comparing what
    # escaped a run daphne cut): I8:escaped- outranking the I9:endpoint of
    # discussion #2094, one root cause.
    violations = [Violation("I9", "m", "endpoint"), Violation("I8", "m", "escaped-")]
    failure = failure_of({"asyncio": violations}, ("asyncio",))
    assert failure is not None
    assert failure.keys == ("I8:escaped-", "I9:endpoint")
    finding = Finding.of(failure, HIDDEN_CASE)
    finding.label(known_bugs([CORPUS], "1.10.0"))
    assert finding.status == "known-upstream"  # was new: only I8:escaped- was matched
    assert (finding.entry, finding.matched) == (HIDDEN.name, "I9:endpoint")
    assert finding.upstream == "https://github.com/Kludex/starlette/discussions/2094"


def test_an_unclosed_generator_is_told_apart_by_its_name() -> None:
    # The I7:asyncgen of the 600 s run on 1.10.0: no layer, a streaming
    # endpoint that raises, trio. Its body iterator is left open: the entry of
    # StreamingResponse's generator, not that of BaseHTTPMiddleware's
    # body_stream (same key, no frame: the first one loaded used to win).
    case = case_from_data(
        {
            "format": 1,
            "client": {"at": 0, "disconnect": "body_message"},
            "endpoint": {"kind": "raise_streaming", "chunks": 1},
            "server": {"name": "uvicorn", "send_checkpoints": 1},
        }
    )
    failure = failure_of(judge(case, ("trio",)).violations, ("trio",))
    assert failure is not None
    finding = Finding.of(failure, case)
    finding.label(known_bugs([CORPUS], "1.10.0"))
    assert finding.entry == "streaming-body-iterator-not-closed-trio.json"
    assert finding.signature.endswith("build_endpoint.<locals>:chunks")
