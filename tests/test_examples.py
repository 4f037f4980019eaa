"""The examples as the README runs them: each bug found from the command line
and from pytest, and each fixed version passing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asgifuzz._corpus.entries import parse_version, starlette_version

EXAMPLES = Path(__file__).parent.parent / "examples"

pytestmark = pytest.mark.skipif(
    parse_version(starlette_version()) < (1, 6),
    reason="the examples are measured on Starlette >= 1.6 (FastAPI 0.165's floor); "
    "older releases have their own BaseHTTPMiddleware bugs",
)

#: (folder, buggy app, fixed app, the failure key the bug shows as)
CASES = [
    ("starlette_shop", "app:app", "app_fixed:app", "I4:response"),
    ("fastapi_feed", "main:app", "main_fixed:app", "I1:AssertionError"),
]
#: What each example's pytest tests are named after: test_buggy_<it>, test_fixed_<it>.
TESTED = {"starlette_shop": "stack", "fastapi_feed": "timeout"}


def _folder(name: str) -> Path:
    if name == "fastapi_feed":
        pytest.importorskip("fastapi")
    return EXAMPLES / name


def _fuzz(
    folder: Path, app: str, cases: int, out: Path, *scope: str
) -> subprocess.CompletedProcess[str]:
    # A budget in cases (the time only bounds it): the same cases on a loaded machine.
    command = [sys.executable, "-m", "asgifuzz", "fuzz", "--app", app, "--max-time"]
    command += ["300", "--max-cases", str(cases), "--no-database", *scope]
    command += ["--json", str(out), "--progress", "off"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True)


@pytest.mark.parametrize(("name", "buggy", "fixed", "key"), CASES)
def test_the_cli_finds_the_bug_and_passes_the_fix(
    name: str, buggy: str, fixed: str, key: str, tmp_path: Path
) -> None:
    folder = _folder(name)
    found = _fuzz(folder, buggy, 100, tmp_path / "buggy.json")  # found after 3
    assert found.returncode == 1, found.stdout + found.stderr
    keys = {
        f["key"] for f in json.loads((tmp_path / "buggy.json").read_text())["findings"]
    }
    assert key in keys
    # The fixed twin fixes the planted HTTP middleware; the shop's websocket
    # route keeps Starlette's documented iter_text loop, whose leak (corpus
    # entry websocket-iter-text-not-closed-trio, the README's shop example)
    # fresh draws find within these 150 cases: HTTP only here.
    clean = _fuzz(folder, fixed, 150, tmp_path / "fixed.json", "--scope", "http")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads((tmp_path / "fixed.json").read_text())["cases"] == 150


@pytest.mark.parametrize(("name", "buggy", "fixed", "key"), CASES)
def test_pytest_finds_the_bug_and_passes_the_fix(
    name: str, buggy: str, fixed: str, key: str, tmp_path: Path
) -> None:
    project = tmp_path / name
    shutil.copytree(
        _folder(name), project, ignore=shutil.ignore_patterns("corpus", ".*")
    )
    # Quick: no shrinking (the README's run shrinks; that takes minutes).
    (project / "conftest.py").write_text(
        "from hypothesis import Phase, settings\n"
        "settings.register_profile('quick', database=None, derandomize=True,\n"
        "    phases=[Phase.explicit, Phase.generate])\n"
        "settings.load_profile('quick')\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA"]
    run = subprocess.run(command, cwd=project, capture_output=True, text=True)
    summary = [
        ln for ln in run.stdout.splitlines() if ln.startswith(("PASSED", "FAILED"))
    ]
    assert sorted(
        ln.split(" ")[0] + " " + ln.split("::")[1].split(" ")[0] for ln in summary
    ) == [
        f"{outcome} test_{kind}_{TESTED[name]}[{backend}]"
        for outcome, kind in (("FAILED", "buggy"), ("PASSED", "fixed"))
        for backend in ("asyncio", "trio")
    ], run.stdout[-3000:]
    assert list((project / "corpus" / "new").glob("*.json"))
