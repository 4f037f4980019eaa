"""Attribution: a failure of the user's stack is Starlette's when the same case,
with each user layer swapped for Starlette's own pass-through of its family,
fails the same way; otherwise it is the user's (README, "How findings are
grouped and labelled")."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import attribution_code
import pytest

from asgifuzz._campaign.findings import (
    FAIL_ON,
    UPSTREAM,
    USER,
    Finding,
    FuzzReport,
    failing,
    merge_findings,
)
from asgifuzz._campaign.report import RunInfo, counts, junit_xml, markdown, title
from asgifuzz._cli.main import main
from asgifuzz._corpus.entries import load_entry, save_finding
from asgifuzz._corpus.replay import load_target
from asgifuzz._errors import CaseFormatError
from asgifuzz._oracles.verdict import check, judge, stand_ins, upstream_seen
from asgifuzz.models import (
    Case,
    Client,
    Endpoint,
    Layer,
    Server,
    Stack,
    case_to_data,
)
from asgifuzz.strategies._user import allow_middleware

HERE = Path(__file__).parent


def _fuzz(tmp_path: Path, spec: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """``asgifuzz fuzz`` from the command line, for a bounded time, fixed seed."""
    out = tmp_path / "run.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "asgifuzz",
            "fuzz",
            "--middleware",
            spec,
            "--max-time",
            "8",
            "--seed",
            "1",
            "--no-database",
            "--progress",
            "off",
            "--corpus",
            str(tmp_path / "corpus"),
            "--json",
            str(out),
            "--junit",
            str(tmp_path / "junit.xml"),
            *extra,
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(out.read_text())


def _script(tmp_path: Path, entry: str) -> subprocess.CompletedProcess[str]:
    """``asgifuzz repro ENTRY``: the script on standard output."""
    return subprocess.run(
        [sys.executable, "-m", "asgifuzz", "repro", entry],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_pass_through_base_http_middleware_gets_only_starlettes_findings(
    tmp_path: Path,
) -> None:
    # The done-when of issue 13: a user's pure pass-through BaseHTTPMiddleware
    # gets only findings labelled upstream (Starlette), each with a
    # Starlette-only reproducer that fails on the installed Starlette.
    status, data = _fuzz(tmp_path, "attribution_code:PassThrough")
    findings = data["findings"]
    assert findings, "the pass-through collected none of Starlette's bugs"
    assert {f["owner"] for f in findings} == {UPSTREAM}
    assert (data["user"], data["upstream_starlette"]) == (0, len(findings))
    # Only the user's findings fail the run in user-target mode.
    assert (status, data["fail_on"]) == (0, "user")
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("failures") == "0"
    assert suite.get("skipped") == str(len(findings))
    for finding in findings:
        swapped = finding["swapped"]
        kinds = [la["kind"] for la in swapped["stack"]["layers"]]
        assert not any(k.startswith("user.") for k in kinds)
        assert "bhm.passthrough" in kinds
        # The reproducer is the swapped case's, and it fails (exit status 1).
        made = _script(tmp_path, finding["saved"])
        assert made.returncode == 0, made.stderr
        assert "its failure is Starlette's" in made.stderr
        assert "user." not in made.stdout
        script = tmp_path / "repro.py"
        script.write_text(made.stdout)
        backend = "trio" if finding["backends"] == ["trio"] else "asyncio"
        shown = subprocess.run(
            [sys.executable, str(script), backend],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 1, (finding["key"], shown.stdout, shown.stderr)
        assert "BUG REPRODUCED" in shown.stdout


def test_a_planted_bug_of_the_users_layer_is_theirs_and_fails_the_run(
    tmp_path: Path,
) -> None:
    # DropsLastChunk empties the last request-body message: the endpoint reads
    # less than the client sent (I3), which asgi.passthrough in its place does not.
    status, data = _fuzz(
        tmp_path, "attribution_code:DropsLastChunk", "--backend", "asyncio"
    )
    theirs = [f for f in data["findings"] if f["owner"] == USER]
    (planted,) = [f for f in theirs if f["key"] == "I3"]
    assert status == 1
    assert data["user"] == len(theirs)
    assert not any("swapped" in f for f in theirs)
    # No Starlette-only script for the user's own bug.
    made = _script(tmp_path, planted["saved"])
    assert made.returncode == 2
    assert "its failure is yours" in made.stderr


# Unit tests: the labels, the exit status, the files -----------------------------


def _allowed() -> tuple[str, str]:
    bhm, asgi = allow_middleware(
        [attribution_code.PassThrough, attribution_code.DropsLastChunk]
    )
    return bhm, asgi


def _user_finding(
    *, upstream: bool, status: str = "new", key: str = "I9:endpoint"
) -> Finding:
    bhm, _ = _allowed()
    case = Case(stack=Stack((Layer(bhm),)))
    finding = Finding(key, "asyncio", [f"[{key}] m"], case)
    finding.swapped = stand_ins(case) if upstream else None
    finding.status = status
    return finding


def test_stand_ins_swap_each_user_layer_for_the_pass_through_of_its_family() -> None:
    bhm, asgi = _allowed()
    case = Case(stack=Stack((Layer(bhm), Layer("asgi.passthrough"), Layer(asgi))))
    kinds = [la.kind for la in stand_ins(case).stack.layers]
    assert kinds == ["bhm.passthrough", "asgi.passthrough", "asgi.passthrough"]


def test_the_owner_and_the_labels() -> None:
    starlettes, theirs = _user_finding(upstream=True), _user_finding(upstream=False)
    builtin = Finding("I3", "asyncio", ["m"], Case())
    assert (starlettes.owner, theirs.owner, builtin.owner) == (UPSTREAM, USER, UPSTREAM)
    assert title(starlettes) == "I9:endpoint on asyncio, upstream (Starlette), new"
    assert title(theirs) == "I9:endpoint on asyncio, yours, new"
    # A case of built-in code only is Starlette's by construction: no label shown.
    assert title(builtin) == "I3 on asyncio, new"
    data = starlettes.to_data()
    assert data["owner"] == UPSTREAM
    assert data["swapped"] == case_to_data(stand_ins(starlettes.case))
    assert theirs.to_data()["owner"] == USER
    assert "swapped" not in theirs.to_data()
    # One signature, two owners: two findings (the user's is not hidden).
    assert len(merge_findings([starlettes, theirs])) == 2
    report = FuzzReport(("asyncio",), findings=[starlettes, theirs])
    assert counts(report) == "2 new, 0 known upstream; 1 yours, 1 upstream (Starlette)"
    assert counts(FuzzReport(("asyncio",), findings=[builtin])) == (
        "1 new, 0 known upstream"
    )


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [
        ("any", [True, True, True, True]),
        ("new", [True, False, True, False]),
        ("user", [True, False, False, False]),
    ],
)
def test_fail_on_is_a_ladder(fail_on: str, expected: list[bool]) -> None:
    findings = [
        _user_finding(upstream=False),
        _user_finding(upstream=False, status="known-upstream"),
        _user_finding(upstream=True),
        _user_finding(upstream=True, status="known-upstream"),
    ]
    assert fail_on in FAIL_ON
    assert [failing(f, fail_on) for f in findings] == expected


def test_junit_and_markdown_show_the_owner() -> None:
    starlettes, theirs = _user_finding(upstream=True), _user_finding(upstream=False)
    report = FuzzReport(("asyncio",), cases=10, elapsed=1.0)
    report.findings = [starlettes, theirs]
    path = Path("corpus/x.json")
    info = RunInfo(report, {}, {}, saved={starlettes.ident: path}, fail_on="user")
    suite = ET.fromstring(junit_xml(info))
    _, upstream_case, user_case = suite.findall("testcase")
    props = {p.get("name"): p.get("value") for p in upstream_case.iter("property")}
    assert props["owner"] == UPSTREAM
    skipped = upstream_case.find("skipped")
    assert skipped is not None
    assert (skipped.get("message") or "").startswith("upstream (Starlette): ")
    out = upstream_case.find("system-out")
    assert out is not None
    assert out.text is not None
    assert "asgifuzz repro corpus/x.json > repro.py && python repro.py" in out.text
    assert "swapped case (Starlette-only" in out.text
    assert user_case.find("failure") is not None
    assert upstream_case.get("name") == "I9:endpoint (upstream)"
    text = markdown(info, plot=None, no_plot="none")
    assert "| upstream (Starlette), new |" in text
    assert "| yours, new |" in text
    assert "Swapped case (Starlette-only, fails the same way):" in text


def test_entries_keep_the_swapped_case(tmp_path: Path) -> None:
    starlettes, theirs = _user_finding(upstream=True), _user_finding(upstream=False)
    args = ("I9:endpoint", starlettes.case, "asyncio", ["m"], "I9:endpoint")
    saved = save_finding(tmp_path, *args, swapped=starlettes.swapped)
    assert saved is not None
    entry = load_entry(saved)
    assert entry.swapped == starlettes.swapped
    assert load_target(saved).swapped == starlettes.swapped
    # Theirs of the same signature is another entry, not a rival of Starlette's.
    other = replace_body(theirs.case)
    assert save_finding(tmp_path, "I9:endpoint", other, "asyncio", ["m"]) is not None
    # A swapped case must be Starlette code only.
    data = json.loads(saved.read_text())
    data["swapped"] = case_to_data(theirs.case)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CaseFormatError, match="field 'swapped' names user code"):
        load_entry(bad)
    # A finding copied out of fuzz --json holds it too.
    finding = tmp_path / "finding.json"
    finding.write_text(json.dumps(starlettes.to_data()))
    assert load_target(finding).swapped == starlettes.swapped


def replace_body(case: Case) -> Case:
    """The case with another endpoint (another hash, another file)."""
    return Case(stack=case.stack, endpoint=Endpoint(kind="echo"))


def test_repro_writes_the_swapped_case_or_refuses_the_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    starlettes = _user_finding(upstream=True, key="I3")
    path = tmp_path / "finding.json"
    path.write_text(json.dumps(starlettes.to_data()))
    assert main(["repro", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "its failure is Starlette's" in err
    assert "BaseHTTPMiddleware" in out
    assert "user." not in out
    path.write_text(json.dumps(_user_finding(upstream=False, key="I3").to_data()))
    assert main(["repro", str(path)]) == 2
    assert "its failure is yours" in capsys.readouterr().err


# The verdict and check ----------------------------------------------------------


#: Starlette 1.10.0's BaseHTTPMiddleware hides the disconnect from an endpoint
#: polling is_disconnected() (I9:endpoint): the user's pass-through triggers it.
def _hidden(layer: str) -> Case:
    return Case(
        stack=Stack((Layer(layer),)),
        endpoint=Endpoint(kind="poll_disconnect"),
        client=Client(disconnect="checkpoints", at=3),
        server=Server(name="uvicorn"),
    )


def test_check_passes_starlettes_failures_and_hands_them_on() -> None:
    bhm, _ = _allowed()
    case = _hidden(bhm)
    alone = judge(stand_ins(case), ("asyncio",))
    if not alone.failed:
        pytest.skip("this Starlette shows no failure of a pass-through here")
    seen: list[Any] = []
    token = upstream_seen.set(seen.append)
    try:
        verdict = check(case, ("asyncio",))
    finally:
        upstream_seen.reset(token)
    assert seen == [verdict]
    assert verdict.swapped == stand_ins(case)
    keys = Counter(v.key for v in verdict.elsewhere["asyncio"])
    assert keys == Counter(v.key for v in alone.violations["asyncio"])
    assert not verdict.violations["asyncio"]


def test_replay_of_starlettes_failure_in_a_users_case_still_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bhm, _ = _allowed()
    case = _hidden(bhm)
    verdict = judge(case, ("asyncio",))
    if not verdict.upstream:
        pytest.skip("this Starlette shows no failure of a pass-through here")
    (violation,) = verdict.elsewhere["asyncio"]
    saved = save_finding(
        tmp_path, violation.key, case, "asyncio", ["m"], swapped=verdict.swapped
    )
    assert saved is not None
    argv = ["replay", str(saved), "--backend", "asyncio"]
    status = main([*argv, "--middleware", "attribution_code:PassThrough"])
    out = capsys.readouterr().out
    assert status == 1
    assert f"still failing ({violation.key})" in out
    assert f"[{violation.key}] {violation.message} (upstream (Starlette))" in out


def test_a_case_with_the_users_app_is_not_attributed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The app stays in a swapped case: not Starlette code only, so not Starlette's.
    from starlette.applications import Starlette

    from asgifuzz._oracles import verdict as _verdict
    from asgifuzz._oracles.violations import Violation
    from asgifuzz._targets.specs import AppTarget
    from asgifuzz.strategies._user import allow_app

    bhm, _ = _allowed()
    # A name of its own: "app" is another test's (the registry is the process's).
    app = allow_app(AppTarget("attribution_app", Starlette())).name
    attributed: list[Case] = []
    monkeypatch.setattr(_verdict, "_attribute", lambda v, b: attributed.append(v.case))
    monkeypatch.setattr(_verdict, "judge_outcome", lambda o: [Violation("I3", "m")])
    with_app = Case(stack=Stack((Layer(bhm),)), app=app)
    assert judge(with_app, ("asyncio",)).failed
    without = Case(stack=Stack((Layer(bhm),)))
    assert judge(without, ("asyncio",)).failed
    assert attributed == [without]
