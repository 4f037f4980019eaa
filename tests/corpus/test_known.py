"""Known upstream by default: findings labelled (never hidden) by the corpus entry
their signature matches, the shipped corpus found, ``--fail-on``, the labels in
the terminal, ``--json`` and JUnit."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fakes import judge_with as _judge_with
from hypothesis import strategies as st

from asgifuzz._campaign import loop as _loop
from asgifuzz._campaign.campaign import Campaign, FuzzConfig
from asgifuzz._campaign.findings import Finding, FuzzReport
from asgifuzz._campaign.loop import fuzz
from asgifuzz._campaign.progress import NoDisplay
from asgifuzz._campaign.report import RunInfo, junit_xml
from asgifuzz._cli.main import main
from asgifuzz._corpus.entries import load_entry
from asgifuzz._corpus.known import (
    KnownBug,
    KnownBugs,
    known_bugs,
    match_key,
    shipped_corpus,
)
from asgifuzz.models import Case, Endpoint, Layer, Stack

CORPUS = Path(__file__).parents[2] / "corpus"
#: Known upstream from 0.15.0 to 1.10.0: both the suite's Starlette releases.
HANG = CORPUS / "is-disconnected-drops-body-hang.json"
CALL_NEXT = (
    "starlette/middleware/base.py:BaseHTTPMiddleware.__call__.<locals>.call_next"
)


def test_the_shipped_corpus_is_the_checkouts() -> None:
    assert shipped_corpus() == CORPUS.resolve()


def test_frames_match_whatever_their_directories_line_numbers_and_class() -> None:
    key = match_key(f"I1:RuntimeError@{CALL_NEXT}", Case())
    assert key == "I1:RuntimeError@base.py:call_next"
    for same in (
        "I1:RuntimeError@/usr/lib/python3/dist-packages/starlette/middleware/base.py:call_next",
        "I1:RuntimeError@base.py:179:BaseHTTPMiddleware.call_next",
        "I1:RuntimeError@errors.py:ServerErrorMiddleware.__call__;base.py:call_next",
    ):
        assert match_key(same, Case()) == key
    assert match_key("I1:RuntimeError@base.py:dispatch", Case()) != key
    assert match_key(f"I1:KeyError@{CALL_NEXT}", Case()) != key


def test_without_a_frame_the_users_code_tells_apart_not_the_built_in_layers() -> None:
    bare = Case(stack=Stack((Layer("bhm.poll_disconnect"),)))
    noisy = Case(stack=Stack((Layer("bhm.passthrough"), Layer("bhm.poll_disconnect"))))
    theirs = Case(stack=Stack((Layer("user.Auth"), Layer("bhm.poll_disconnect"))))
    assert match_key("I4:response", bare) == match_key("I4:response", noisy)
    assert match_key("I4:response", theirs) == "I4:response#user.Auth"
    assert match_key("I4:response", Case(app="shop")) == "I4:response#app:shop"
    assert match_key("I3", bare) != match_key("I4:response", bare)


def test_without_a_frame_an_extension_endpoint_tells_apart() -> None:
    # A response left incomplete by a layer that drops a zero-copy send is not
    # another layer's incomplete response; a plain endpoint kind is not compared.
    zero = Case(endpoint=Endpoint(kind="zerocopysend"))
    assert match_key("I1:incomplete", zero) == "I1:incomplete#endpoint:zerocopysend"
    assert match_key("I1:incomplete", Case()) == "I1:incomplete#"
    assert match_key("I1:incomplete", Case(endpoint=Endpoint(kind="echo"))) == (
        "I1:incomplete#"
    )


def _corpus_with(tmp_path: Path, status: str = "known-upstream") -> Path:
    directory = tmp_path / "known"
    directory.mkdir()
    data = json.loads(HANG.read_text())
    data["status"] = status
    (directory / HANG.name).write_text(json.dumps(data))
    return directory


def test_entries_affecting_the_release_are_replayed_for_their_signature(
    tmp_path: Path,
) -> None:
    directory = _corpus_with(tmp_path)
    known = known_bugs([directory], "1.10.0")
    (bug,) = known.bugs
    entry = load_entry(directory / HANG.name)
    assert bug.entry == HANG.name
    assert bug.upstream == "https://github.com/Kludex/starlette/discussions/2215"
    assert match_key("I4:response", entry.case) in bug.matches
    assert (known.directories, known.version) == ((directory,), "1.10.0")
    assert not known_bugs([directory], "1.11.0")  # outside its affected range
    # Without replaying, what the entry records (its key here) is all there is.
    unplayed = known_bugs([directory], "1.10.0", replay=False)
    assert unplayed.bugs[0].matches == {"I4:response#"}


def _bugs(*bugs: tuple[str, str, str]) -> KnownBugs:
    return KnownBugs(
        tuple(
            KnownBug(
                name, status, f"https://example.invalid/{name}", "t", frozenset({m})
            )
            for name, status, m in bugs
        )
    )


def test_a_finding_is_labelled_by_signature_not_by_key() -> None:
    known = _bugs(
        ("hang.json", "known-upstream", "I4:response#"),
        ("call-next.json", "fixed", "I1:RuntimeError@base.py:call_next"),
        ("ours.json", "new", "I3#"),
    )
    hang = Finding("I4:response", "asyncio", ["m"], Case())
    hang.label(known)
    assert (hang.status, hang.upstream, hang.entry) == (
        "known-upstream",
        "https://example.invalid/hang.json",
        "hang.json",
    )
    assert (
        hang.describe_status() == "known upstream (https://example.invalid/hang.json)"
    )
    # The same key in a case that needs the user's layer: their bug, new.
    theirs = Finding(
        "I4:response", "asyncio", ["m"], Case(stack=Stack((Layer("user.Auth"),)))
    )
    theirs.label(known)
    assert (theirs.status, theirs.entry) == ("new", "")
    # A fixed entry is an upstream bug too (fixed in a later release); the same
    # key raised elsewhere is not it.
    fixed = Finding(
        "I1:RuntimeError",
        "trio",
        ["m"],
        Case(),
        signature=f"I1:RuntimeError@{CALL_NEXT}",
    )
    fixed.label(known)
    assert fixed.status == "known-upstream"
    elsewhere = Finding(
        "I1:RuntimeError", "trio", ["m"], Case(), signature="I1:RuntimeError@app.py:f"
    )
    elsewhere.label(known)
    assert elsewhere.status == "new"
    # A bug written up here but not upstream stays new, with its entry named.
    ours = Finding("I3", "trio", ["m"], Case())
    ours.label(known)
    assert (ours.status, ours.describe_status()) == (
        "new",
        "new (corpus entry ours.json)",
    )
    data = hang.to_data()
    assert (data["status"], data["upstream"]) == ("known-upstream", hang.upstream)
    assert "upstream" not in ours.to_data()
    nothing = Finding("I3", "trio", ["m"], Case())
    nothing.label(None)
    assert nothing.status == "new"


def test_a_fuzz_run_labels_a_known_bug_it_finds(tmp_path: Path) -> None:
    entry = load_entry(HANG)
    known = known_bugs([_corpus_with(tmp_path)])
    report = fuzz(max_time=0.1, strategy=st.just(entry.case), known_upstream=known)
    (finding,) = report.findings
    assert (finding.status, finding.entry) == ("known-upstream", HANG.name)
    assert report.to_data()["known_upstream"] == 1
    assert report.to_data()["new"] == 0


def _labelled(*statuses: str) -> FuzzReport:
    report = FuzzReport(("asyncio", "trio"), cases=10, elapsed=1.0)
    for n, status in enumerate(statuses):
        f = Finding(f"I{n + 1}", "asyncio", [f"message {n}"], Case())
        f.status = status
        f.upstream = "https://example.invalid/1" if status != "new" else ""
        report.findings.append(f)
    return report


@pytest.mark.parametrize(
    ("fail_on", "statuses", "status"),
    [
        ("any", ("known-upstream",), 1),
        ("new", ("known-upstream",), 0),
        ("new", ("known-upstream", "new"), 1),
        ("new", (), 0),
    ],
)
def test_fail_on_sets_the_exit_status(
    fail_on: str, statuses: tuple[str, ...], status: int
) -> None:
    config = FuzzConfig(
        backends=("asyncio",), database=None, progress="off", fail_on=fail_on
    )
    assert (
        Campaign(config, display=NoDisplay()).exit_status(_labelled(*statuses))
        == status
    )


def test_junit_labels_and_skips_what_does_not_fail_the_run() -> None:
    report = _labelled("known-upstream", "new")
    for fail_on, known_is in (("any", "failure"), ("new", "skipped")):
        info = RunInfo(report, {}, {}, fail_on=fail_on)
        suite = ET.fromstring(junit_xml(info))
        assert suite.get("failures") == ("2" if fail_on == "any" else "1")
        assert suite.get("skipped") == ("0" if fail_on == "any" else "1")
        _, known, new = suite.findall("testcase")
        outcome = known.find(known_is)
        assert outcome is not None
        assert outcome.get("message") == (
            "known upstream (https://example.invalid/1): message 0"
        )
        labels = {p.get("name"): p.get("value") for p in known.iter("property")}
        assert labels["status"] == "known-upstream"
        assert labels["upstream"] == "https://example.invalid/1"
        failure = new.find("failure")
        assert failure is not None
        assert failure.get("message") == "message 1"
    assert "(1 new, 1 known upstream)" in RunInfo(report, {}, {}).headline()


def test_the_cli_labels_by_default_and_counts_new_and_known_apart(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The made-up I4:app failure (any case with a body), declared known upstream
    # by a corpus of the test's: matched by its key and the (no) user code.
    known = tmp_path / "known"
    known.mkdir()
    data = json.loads(HANG.read_text())
    data["key"] = "I4:app"
    (known / "made-up.json").write_text(json.dumps(data))
    monkeypatch.setattr(_loop, "judge", _judge_with(fail=True))
    args = ["fuzz", "--no-supervisor", "--max-time", "0.5", "--no-database"]
    args += ["--progress", "off"]  # (judge is patched in this process)
    out = tmp_path / "s.json"
    assert (
        main([*args, "--known", str(known), "--json", str(out), "--fail-on", "new"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "distinct failures: 1 (0 new, 1 known upstream)" in printed
    assert re.search(
        r"known bugs: \d+ corpus entries affecting Starlette \S+ \(", printed
    )
    (finding,) = json.loads(out.read_text())["findings"]
    assert (finding["status"], finding["upstream"]) == (
        "known-upstream",
        "https://github.com/Kludex/starlette/discussions/2215",
    )
    # Each message once, naming its backends; the failure ends with its replay.
    assert printed.count("[I4:app] made up for the test (on asyncio and trio)") == 1
    assert "  replay: not saved; run again with --corpus DIR" in printed
    assert main([*args, "--known", str(known), "--fail-on", "any"]) == 1
    assert main([*args, "--no-known", "--fail-on", "new"]) == 1
    printed = capsys.readouterr().out
    assert "known bugs: none" in printed
    assert "distinct failures: 1 (1 new, 0 known upstream)" in printed


def test_the_replay_command_names_the_saved_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_loop, "judge", _judge_with(fail=True))
    corpus = tmp_path / "corpus"
    args = ["fuzz", "--no-supervisor", "--max-time", "60", "--max-cases", "20"]
    # (judge is patched in this process; a budget in cases, so that the two
    # runs draw and shrink the same on a loaded machine)
    args += ["--backend", "trio", "--no-database"]
    assert main([*args, "--no-known", "--corpus", str(corpus)]) == 1
    (entry,) = corpus.glob("*.json")
    assert (
        f"  replay: asgifuzz replay {entry} --backend trio --trace"
        in capsys.readouterr().out
    )
    # Again: the entry saved before (as small) is the one to replay.
    assert main([*args, "--no-known", "--corpus", str(corpus)]) == 1
    printed = capsys.readouterr().out
    assert f"kept the smaller entry saved before: {entry}" in printed
    assert f"  replay: asgifuzz replay {entry} --backend trio --trace" in printed
