"""A finding is a bug, not a key: findings that match one known bug (one corpus
entry, or entries sharing a ``cause``) are one finding, the first seen
keeping the others in ``also``; distinct bugs stay apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asgifuzz._campaign.findings import Finding, FuzzReport, idents, merge_findings
from asgifuzz._campaign.report import RunInfo, junit_xml, markdown
from asgifuzz._corpus.entries import load_entry
from asgifuzz._corpus.known import KnownBug, KnownBugs, known_bugs
from asgifuzz._errors import CaseFormatError
from asgifuzz._oracles.failures import failure_of
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, Layer, Stack

CORPUS = Path(__file__).parents[2] / "corpus"
#: Report A: `Request.is_disconnected()` drops a buffered body message; the
#: endpoint then reads a truncated body (I3) or waits for it (I4:response).
DROPS = ("is-disconnected-drops-body-truncated", "is-disconnected-drops-body-hang")


def _finding(name: str, first_seen: float) -> Finding:
    entry = load_entry(CORPUS / f"{name}.json")
    failure = failure_of(judge(entry.case, entry.backends).violations, entry.backends)
    assert failure is not None
    return Finding.of(failure, entry.case, first_seen=(first_seen, 1))


def test_the_entries_of_one_cause_make_one_finding(tmp_path: Path) -> None:
    # The two entries alone: on an old release another entry (#847's deadlock)
    # is the I4:response hang too.
    for name in DROPS:
        (tmp_path / f"{name}.json").write_text((CORPUS / f"{name}.json").read_text())
    known = known_bugs([tmp_path])
    truncated, hang = (_finding(n, t) for n, t in zip(DROPS, (2.0, 1.0), strict=True))
    assert truncated.signature != hang.signature
    for f in (truncated, hang):
        f.label(known)
    assert truncated.entry != hang.entry
    assert truncated.bug == hang.bug == "is-disconnected-drops-body"
    (one,) = merge_findings([truncated, hang])
    assert one is hang  # the first seen
    assert one.also == [truncated]
    assert idents([one]) == {hang.ident, truncated.ident}
    (line,) = one.describe_also()
    assert line.startswith(f"also seen as {truncated.key} (known upstream (")
    assert "the same known bug (is-disconnected-drops-body)" in line
    assert one.to_data()["also"][0]["signature"] == truncated.signature
    report = FuzzReport(("asyncio", "trio"), cases=2, elapsed=1.0, findings=[one])
    assert line in junit_xml(RunInfo(report, {}, {})).decode()
    assert f"- {line}" in markdown(RunInfo(report, {}, {}), plot=None)
    # Merging again (another round, another worker) keeps it one, once.
    again = _finding(DROPS[0], 3.0)
    again.label(known)
    (same,) = merge_findings([one, again])
    assert same is one
    assert len(one.also) == 1


def _labelled(signature: str, bug: str, case: Case | None = None) -> Finding:
    finding = Finding(signature, "asyncio", ["m"], case or Case())
    finding.label(KnownBugs((KnownBug(bug, "new", "", "t", frozenset()),)))
    finding.bug = bug
    return finding


def test_distinct_bugs_and_owners_stay_apart() -> None:
    a, b = _labelled("I3", "x.json"), _labelled("I4:response", "y.json")
    assert merge_findings([a, b]) == [a, b]
    unknown = [
        Finding("I3", "asyncio", ["m"], Case()),
        Finding("I9", "asyncio", ["m"], Case()),
    ]
    assert merge_findings(unknown) == unknown
    user = Case(stack=Stack((Layer("user.G"),)))
    mine, theirs = _labelled("I3", "x.json", user), _labelled("I4:app", "x.json")
    assert mine.owner != theirs.owner
    assert merge_findings([mine, theirs]) == [mine, theirs]


def test_a_cause_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    data = json.loads((CORPUS / f"{DROPS[0]}.json").read_text())
    data["cause"] = ["A"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CaseFormatError, match=r"bad.json: field 'cause' is \['A'\]"):
        load_entry(path)
