"""Reports: JUnit XML, Markdown with tables and a PNG plot, the fuzz CLI's options."""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fakes import judge_with as _judge_with

from asgifuzz._campaign import campaign as _campaign
from asgifuzz._campaign import loop as _fuzz
from asgifuzz._campaign.campaign import Campaign, FuzzConfig, hooks
from asgifuzz._campaign.loop import Finding, FuzzReport
from asgifuzz._campaign.plot import NO_MATPLOTLIB
from asgifuzz._campaign.progress import NoDisplay, Sample, Sampler
from asgifuzz._campaign.report import (
    RunInfo,
    junit_xml,
    markdown,
    write_bytes_atomically,
    write_markdown,
)
from asgifuzz._cli.main import main
from asgifuzz._corpus.replay import load_target
from asgifuzz.models import Case, Request

PNG = b"\x89PNG\r\n\x1a\n"


def run_info(*, findings: int = 2, interrupted: bool = False) -> RunInfo:
    r = FuzzReport(("asyncio", "trio"), cases=200, elapsed=4.0, generation_s=2.5)
    r.point_runs, r.shrink_runs = 300, 40
    r.outcomes = Counter(
        {"asyncio:response": 150, "asyncio:violation": 50, "trio:response": 200}
    )
    cases = [Case(), Case(request=Request(body=(b"a|b",)))]
    r.findings = [
        Finding(
            f"I{n + 3}:x",
            "asyncio",
            [f"message <{n}> & more | pipes", "second line"],
            cases[n],
            flaky=n == 1,
            first_seen_s=0.5 + n,
            first_seen_cases=10 * n,
        )
        for n in range(findings)
    ]
    r.interrupted = interrupted
    samples = [Sample(t / 2, 25 * t, min(t, 2)) for t in range(9)]
    return RunInfo(
        r,
        {"budget": "4s", "workers": "2", "command": "asgifuzz fuzz | tee"},
        {"starlette": "1.10.0", "anyio": "4.16.0"},
        samples=samples,
    )


def test_junit_parses_with_one_testcase_per_failure_and_one_for_the_run() -> None:
    info = run_info()
    info.saved["I3:x"] = Path("corpus/i3-x.json")
    suite = ET.fromstring(junit_xml(info))
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        "3",
        "2",
        "0",
    )
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/")}
    assert props == {
        "budget": "4s",
        "workers": "2",
        "command": "asgifuzz fuzz | tee",
        "starlette": "1.10.0",
        "anyio": "4.16.0",
        "generated_cases": "200",
        "point_runs": "300",
        "shrink_runs": "40",
        "replay_runs": "0",
        "generation_s": "2.500",
    }
    run, first, second = suite.findall("testcase")
    assert run.get("name") == "campaign"
    assert run.find("failure") is None
    assert (
        "200 generated cases (+ 300 runs at disconnect points, 40 runs shrinking) "
        "in 4.0s (80.0 generated cases/s over 2.5s of generation)"
    ) in (run.findtext("system-out") or "")
    assert (first.get("name"), first.get("classname")) == (
        "I3:x",
        "asgifuzz.fuzz.asyncio",
    )
    failure = first.find("failure")
    assert failure is not None
    assert failure.get("message") == "message <0> & more | pipes"
    assert "asgifuzz replay corpus/i3-x.json --backend asyncio" in (failure.text or "")
    assert "shrunk case: {" in (second.findtext("failure") or "")


def test_markdown_has_the_tables_and_says_why_there_is_no_plot() -> None:
    info = run_info(interrupted=True)
    text = markdown(info, plot=None, no_plot="a reason")
    assert "interrupted (Ctrl-C)" in text.splitlines()[2]
    for heading in ("Run settings", "Versions", "Throughput", "Outcomes", "Findings"):
        assert f"## {heading}\n\n|" in text
    assert "| asyncio | 200 | 80.0 |" in text  # per second of generation
    assert "Besides them: 300 runs at disconnect points" in text
    assert "40 runs shrinking failures, 0 replays of saved cases." in text
    assert "| violation | 50 | 0 |" in text
    assert "No plot could be made: a reason." in text
    assert "| command | asgifuzz fuzz \\| tee |" in text  # a pipe stays in its cell
    assert "- message <0> & more | pipes" in text
    assert "| 2 | `I4:x` (flaky) | asyncio | 1.5s / 10 cases | below | - |" in text


def test_no_findings_says_so() -> None:
    text = markdown(run_info(findings=0), plot="r.png")
    assert "No failures found." in text
    assert "![cases/s and distinct failures over time](r.png)" in text


def test_report_with_plot_and_findings_saved_beside_it(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    info = run_info()
    info.saved["I3:x"] = tmp_path / "corpus" / "i3-x.json"
    out = tmp_path / "out" / "report.md"
    png = write_markdown(out, info)
    assert png == tmp_path / "out" / "report.png"
    assert png.read_bytes().startswith(PNG)
    text = out.read_text()
    assert "![cases/s and distinct failures over time](report.png)" in text
    assert "[i3-x.json](../corpus/i3-x.json)" in text  # relative to the report
    beside = tmp_path / "out" / "report-findings" / "2-i4-x.json"
    assert f"`asgifuzz replay {beside} --backend asyncio --trace`" in text
    target = load_target(beside)  # replay takes it as it is
    assert (target.key, target.case) == ("I4:x", info.report.findings[1].case)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_without_matplotlib_the_report_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    out = tmp_path / "r.md"
    assert write_markdown(out, run_info(findings=0)) is None
    assert not (tmp_path / "r.png").exists()
    assert f"No plot could be made: {NO_MATPLOTLIB}." in out.read_text()


def test_a_run_too_short_to_sample_has_no_plot(tmp_path: Path) -> None:
    info = run_info(findings=0)
    info.samples = info.samples[:1]
    assert write_markdown(tmp_path / "r.md", info) is None
    assert "too short to sample" in (tmp_path / "r.md").read_text()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.xml"
    path.write_bytes(b"old")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["j.xml"]


def _config(**kw: Any) -> FuzzConfig:
    base: dict[str, Any] = {
        "max_time": 5.0,
        "backends": ("trio",),
        "database": "redis://:secret@db.example:6379/0",
        "progress": "off",
    }
    return FuzzConfig(**{**base, **kw})


def test_campaign_settings_hide_passwords_and_exit_statuses() -> None:
    campaign = Campaign(_config(), display=NoDisplay())
    settings = campaign.settings()
    assert settings["database"] == "redis://***@db.example:6379/0"
    assert settings["shared database"] == "-"
    assert isinstance(hooks(campaign, 1)["on_case"], Sampler)
    assert hooks(campaign, 2) == {"on_snapshot": campaign.on_snapshot}
    r = FuzzReport(("trio",))
    assert campaign.exit_status(r) == 0
    r.interrupted = True
    assert campaign.exit_status(r) == _campaign.INTERRUPTED == 130
    r.findings = run_info().report.findings
    assert campaign.exit_status(r) == 1
    assert campaign.write_reports(r) == []  # neither --junit nor --report
    off = Campaign(_config(database=None), display=NoDisplay())
    assert off.settings()["database"] == "none"


def test_fuzz_cli_writes_junit_and_report_linking_the_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_fuzz, "judge", _judge_with(fail=True))
    junit, md = tmp_path / "j.xml", tmp_path / "r.md"
    status = main(
        [
            "fuzz",
            "--no-supervisor",  # judge is patched in this process
            "--max-time",
            "1.5",
            "--backend",
            "asyncio",
            "--no-database",
            "--corpus",
            str(tmp_path / "corpus"),
            "--junit",
            str(junit),
            "--report",
            str(md),
            "--progress",
            "lines",
            "--progress-every",
            "0.5",
        ]
    )
    assert status == 1
    captured = capsys.readouterr()
    assert f"wrote {junit}" in captured.out
    assert "asgifuzz: " in captured.err
    assert "failures 1 (I4:app)" in captured.err
    suite = ET.parse(junit).getroot()
    (failing,) = [t for t in suite.iter("testcase") if t.find("failure") is not None]
    assert failing.get("name") == "I4:app"
    text = md.read_text()
    (entry,) = (tmp_path / "corpus").glob("*.json")
    assert f"[{entry.name}](corpus/{entry.name})" in text
    assert json.loads(entry.read_text())["key"] == "I4:app"
