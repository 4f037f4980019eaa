"""The ecosystem campaign's table and script (``scripts/ecosystem``) hold together.

The campaign itself installs third-party packages into venvs and fuzzes each for a
minute (the nightly job runs it); here: the table names pinned packages, factories
that exist and triage verdicts of the three kinds, and the script's requirements
and table are what its docstring says.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLE = tomllib.loads((ROOT / "scripts" / "ecosystem.toml").read_text())
PACKAGES: list[dict[str, Any]] = TABLE["package"]
FACTORIES = {
    node.name
    for node in ast.parse(
        (ROOT / "benchmarks" / "ecosystem_targets.py").read_text()
    ).body
    if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
}


@pytest.fixture(scope="module")
def script() -> ModuleType:
    path = ROOT / "scripts" / "ecosystem"
    loader = importlib.machinery.SourceFileLoader("ecosystem_script", str(path))
    spec = importlib.util.spec_from_loader("ecosystem_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_at_least_ten_packages_each_named_once_and_pinned() -> None:
    names = [p["name"] for p in PACKAGES]
    assert len(names) >= 10
    assert len(set(names)) == len(names)
    for p in PACKAGES:
        assert "==" in p["pip"][0], f"{p['name']}: pin the package's version"
        assert p["what"], p["name"]


@pytest.mark.parametrize("package", PACKAGES, ids=[p["name"] for p in PACKAGES])
def test_each_factory_spec_names_a_factory(package: dict[str, Any]) -> None:
    module, _, attr = package["spec"].partition(":")
    if module == "ecosystem_targets":
        assert attr in FACTORIES
    for verdict in package.get("triage", {}).values():
        assert verdict.split(":")[0].split(",")[0] in ("package", "starlette", "ours")


def test_requirements_pin_the_base_over_asgifuzz_s_own(script: ModuleType) -> None:
    package = {"name": "x", "pip": ["x==1.0"], "spec": "x:X", "what": "x"}
    reqs = script.requirements(TABLE, package)
    assert reqs[0] == "x==1.0"
    assert "starlette==1.10.0" in reqs
    assert [r for r in reqs if script._name(r) == "starlette"] == ["starlette==1.10.0"]
    assert "hypothesis" in {script._name(r) for r in reqs}


def test_the_table_shows_findings_with_their_triage_and_errors(
    script: ModuleType,
) -> None:
    results = [
        {
            "name": "a", "version": "1", "spec": "a:A", "cases": 10,
            "findings": [{"signature": "I2:twice", "seen_on": "trio only", "triage": "untriaged"}],
        },
        {"name": "b", "version": "2", "spec": "b:B", "cases": 5, "findings": []},
        {"name": "c", "spec": "c:C", "error": "pip failed"},
    ]  # fmt: skip
    lines = script.markdown(results, 60).splitlines()
    assert lines[2] == "| package | version | spec | cases | findings | triage |"
    assert lines[4] == "| a | 1 | `a:A` | 10 | `I2:twice` (trio only) | untriaged |"
    assert lines[5] == "| b | 2 | `b:B` | 5 | 0 | - |"
    assert lines[6] == "| c | ? | `c:C` | - | error | pip failed |"


def test_a_finding_is_triaged_by_signature_then_key_then_invariant(
    script: ModuleType,
) -> None:
    package = {"triage": {"I1:IndexError@a.py:f": "package: a", "I2": "ours: b"}}
    findings = [
        {"signature": "I1:IndexError@a.py:f", "key": "I1:IndexError"},
        {"signature": "I2:start-twice", "key": "I2:start-twice"},
        {"signature": "I1:IndexError@b.py:g", "key": "I1:IndexError"},
    ]
    result = script.triaged({"findings": findings}, package)
    assert [f["triage"] for f in result["findings"]] == [
        "package: a",
        "ours: b",
        "untriaged",
    ]


def test_starlettes_findings_are_triaged_by_attribution(script: ModuleType) -> None:
    package = {"triage": {"I3": "package: c"}}
    findings = [
        {"signature": "I3", "key": "I3", "owner": "upstream-starlette", "upstream": "u"},
        {"signature": "I8:escaped", "key": "I8:escaped", "owner": "upstream-starlette"},
        {"signature": "I3", "key": "I3", "owner": "user"},
    ]  # fmt: skip
    verdicts = [
        f["triage"] for f in script.triaged({"findings": findings}, package)["findings"]
    ]
    assert verdicts[0].startswith("starlette, known: u (attributed")
    assert verdicts[1].startswith("starlette, new (attributed")
    assert verdicts[2] == "package: c"


@pytest.mark.parametrize("package", PACKAGES, ids=[p["name"] for p in PACKAGES])
def test_each_specs_declarations_are_valid(package: dict[str, Any]) -> None:
    from asgifuzz._targets.declarations import declaration
    from asgifuzz._targets.spec_text import parse_spec, spec_declarations

    spec = package["spec"]
    parse_spec(spec, "spec", declarations=True)
    declaration(spec_declarations(spec, "spec"), package["name"])


def test_check_upstream_says_whether_starlettes_script_failed(
    script: ModuleType,
) -> None:
    findings = [
        {
            "signature": "I3",
            "key": "I3",
            "owner": "upstream-starlette",
            "reproduced": ok,
        }
        for ok in (True, False)
    ]
    verdicts = [
        f["triage"] for f in script.triaged({"findings": findings}, {})["findings"]
    ]
    assert verdicts[0].endswith("its script fails on the venv's Starlette")
    assert verdicts[1].endswith("untriaged: its Starlette-only script does not fail")


def test_the_nightly_workflow_runs_the_campaign() -> None:
    # Issue 13's done-when: the nightly job runs scripts/ecosystem (every package,
    # 60 s, Starlette's scripts checked) and keeps what it found.
    text = (ROOT / ".github" / "workflows" / "nightly.yml").read_text()
    jobs = re.split(r"^  (?=[\w-]+:\n)", text.split("\njobs:\n", 1)[1], flags=re.M)
    (job,) = [j for j in jobs if j.startswith("ecosystem:")]
    command = " ".join(job.split())
    assert "scripts/ecosystem --max-time 60" in command
    assert "--only" not in command
    assert "--check-upstream" in command
    assert "actions/upload-artifact" in job
