from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import judge_with as _judge_with

from asgifuzz._campaign import loop as _fuzz
from asgifuzz._cli.main import main
from asgifuzz._oracles import verdict as _verdict
from asgifuzz.models import Case, Endpoint, Request, case_to_data


def test_fuzz_writes_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    status = main(
        [
            "fuzz",
            "--max-time",
            "0.5",
            "--backend",
            "asyncio",
            "--no-database",
            "--json",
            str(out),
        ]
    )
    data = json.loads(out.read_text())
    assert status == (1 if data["findings"] else 0)
    assert data["cases"] > 0
    assert data["backends"] == ["asyncio"]
    assert sum(data["outcomes"].values()) == data["cases"]
    printed = capsys.readouterr().out
    assert "cases run:" in printed
    assert "cases/s" in printed


def test_fuzz_reports_a_shrunk_failure_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_fuzz, "judge", _judge_with(fail=True))
    out = tmp_path / "s.json"
    status = main(
        [
            "fuzz",
            "--no-supervisor",  # judge is patched in this process
            "--max-time",
            "1",
            "--backend",
            "trio",
            "--no-database",
            "--json",
            str(out),
        ]
    )
    assert status == 1
    finding = json.loads(out.read_text())["findings"][0]
    assert finding["key"] == "I4:app"
    # Shrunk: one short chunk (empty, a zero byte, or, from fresh draws of seed
    # 0, the smallest JSON body: the shrinker stops at a local minimum there).
    (body,) = finding["case"]["request"]["body"]
    assert len(body) <= len('{"data": ""}'), body
    assert "failure 1: I4:app on trio" in capsys.readouterr().out


def test_fuzz_exits_0_when_nothing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fuzz, "judge", _judge_with(fail=False))
    assert (
        main(
            [
                *["fuzz", "--no-supervisor", "--max-time", "0.3"],
                *["--backend", "asyncio", "--no-database"],
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["fuzz", "--max-time", "-1"],
        ["fuzz", "--max-time", "soon"],
        ["fuzz", "--backend", "curio"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "x.json", "--header", "x-api-key: 1"],
        ["replay", "x.json", "--cookie", "session=1"],
        ["corpus", "minimize", "--requests", "mod:requests"],
        ["corpus", "prune", "--header", "x: 1"],
    ],
)
def test_generation_options_are_refused_where_cases_are_replayed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # A saved case holds its requests: an option that only changes what fuzz
    # draws would be ignored, so it is refused, naming the option and the fix.
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {argv[2]} changes the requests `fuzz` draws" in err
    assert "drop it" in err


def test_replay_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: cannot read it" in capsys.readouterr().err


def test_replay_a_malformed_file_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 1, "endpoint": {"kind": "exec"}}))
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err
    assert "'endpoint.kind'" in err


def test_replay_with_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "case.json"
    case = Case(
        endpoint=Endpoint(kind="echo"), request=Request(method="POST", body=(b"ab",))
    )
    path.write_text(case.to_json())
    assert main(["replay", str(path), "--trace", "--backend", "asyncio"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: passes" in out
    assert (
        "server -> ServerErrorMiddleware: http.request body=b'ab' more_body=False"
        in out
    )
    assert "endpoint -> ExceptionMiddleware: http.response.start status=200" in out


def test_fuzz_saves_corpus_entries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from asgifuzz._corpus.entries import load_corpus

    monkeypatch.setattr(_fuzz, "judge", _judge_with(fail=True))
    corpus = tmp_path / "corpus"
    args = ["fuzz", "--no-supervisor", "--max-time", "0.5", "--backend", "asyncio"]
    args += ["--no-database"]
    assert main([*args, "--corpus", str(corpus)]) == 1
    (entry,) = load_corpus(corpus)
    assert entry.key == "I4:app"
    assert entry.status == "new"
    assert entry.backends == ("asyncio",)
    assert not list(corpus.glob(".*.tmp"))  # nothing half-written


def test_python_dash_m() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "asgifuzz", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "fuzz" in out.stdout


def test_help_imports_only_the_parser() -> None:
    # Each command's module (with Starlette, Hypothesis, rich) loads only when it runs.
    import subprocess
    import sys

    code = (
        "import sys; from asgifuzz._cli.main import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "heavy = ('starlette', 'hypothesis', 'rich', 'anyio', 'asgifuzz._cli.fuzz')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "[]", out.stderr


def test_replay_a_finding_from_fuzz_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finding = {
        "key": "I4:app",
        "backend": "asyncio",
        "flaky": False,
        "first_seen_s": 0.1,
        "case": case_to_data(Case()),
    }
    path = tmp_path / "finding.json"
    path.write_text(json.dumps(finding))
    assert main(["replay", str(path), "--backend", "asyncio"]) == 0
    assert f"{path}: passing now (fixed?)" in capsys.readouterr().out


def test_replay_still_failing_mermaid_and_flaky_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgifuzz._cli import replay as _replay

    entry = (
        Path(__file__).parents[2] / "corpus" / "is-disconnected-drops-body-hang.json"
    )
    out = tmp_path / "mmd"
    args = ["replay", str(entry), "--backend", "trio", "--mermaid", str(out)]
    assert main(args) == 1
    printed = capsys.readouterr().out
    assert "still failing (I4:response)" in printed
    diagram = (out / "is-disconnected-drops-body-hang-trio.mmd").read_text()
    assert diagram.startswith("sequenceDiagram\n")
    assert "->>b1: #2 t=0 request 0B" in diagram
    # A case that fails on some runs only is flaky, with its rate.
    real = _verdict.judge
    calls = iter(range(100))

    def sometimes(case: Case, backends: tuple[str, ...]) -> _verdict.Verdict:
        verdict = real(case, backends)
        if next(calls) % 2:
            verdict.violations = {b: [] for b in backends}
        return verdict

    monkeypatch.setattr(_replay, "judge", sometimes)
    assert main([*args[:4], "--runs", "4"]) == 1
    assert "flaky: failed 2 of 4 runs" in capsys.readouterr().out


def test_replay_runs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "x.json", "--runs", "0"]) == 2
    assert "--runs 0" in capsys.readouterr().err


def test_two_workers_merge_their_reports(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    args = ["fuzz", "--max-time", "1", "--backend", "asyncio", "--workers", "2"]
    status = main([*args, "--no-database", "--json", str(out)])
    data = json.loads(out.read_text())
    assert status == (1 if data["findings"] else 0)
    assert data["cases"] > 0
    # One finding per signature (two may share a key: two bugs of one kind).
    assert len({f["signature"] for f in data["findings"]}) == len(data["findings"])


def test_merge_keeps_the_smallest_case_per_key() -> None:
    from asgifuzz._campaign.loop import Finding, FuzzReport
    from asgifuzz._campaign.workers import merge

    small, big = Case(), Case(request=Request(body=(b"x" * 50,)))
    a = FuzzReport(("asyncio",), cases=3, elapsed=1.0)
    a.findings = [Finding("I3", "asyncio", ["m"], big, first_seen_s=0.2)]
    b = FuzzReport(("asyncio",), cases=4, elapsed=2.0)
    b.findings = [Finding("I3", "asyncio", ["m"], small, first_seen_s=0.9)]
    merged = merge([a, b])
    assert (merged.cases, merged.elapsed) == (7, 2.0)
    (finding,) = merged.findings
    assert finding.case == small
    assert finding.first_seen_s == 0.2


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--workers", "0"])
    assert "need a number of workers, 1 or more" in capsys.readouterr().err
