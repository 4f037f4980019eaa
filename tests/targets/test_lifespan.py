"""A middleware with a planted bug in its lifespan branch (it reports a failed
startup as complete) is found by the fuzz loop over lifespan sessions within
60 s, from the command line (``--scope lifespan``); its fixed version passes
(through `lifespan_scope_cases`, the entry ``--scope lifespan`` routes to).

Slow: two fuzz runs (about 45 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asgifuzz._campaign.loop import fuzz
from asgifuzz.strategies._lifespan import lifespan_scope_cases

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_a_startup_failure_reported_as_complete_is_found_from_the_cli(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "asgifuzz", "fuzz", "--scope", "lifespan"),
            *("--middleware", "lifespan_code:StartupReporter", "--max-time", "30"),
            *("--no-database", "--progress", "off", "--json", str(out)),
            *("--corpus", str(tmp_path / "corpus")),
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    findings = json.loads(out.read_text())["findings"]
    lifespan = [f for f in findings if "L2:complete" in f["keys"]]
    assert lifespan, [f["keys"] for f in findings]
    finding = lifespan[0]
    assert finding["first_seen_s"] < 60
    case = json.loads(Path(finding["saved"]).read_text())["case"]
    assert "user.StartupReporter" in [la["kind"] for la in case["stack"]["layers"]]
    assert case["lifespan"]["startup"] in ("fail", "raise")


def test_the_fixed_version_passes() -> None:
    report = fuzz(
        max_time=15,
        strategy=lifespan_scope_cases(
            middleware=["lifespan_code:StartupReporterFixed"]
        ),
    )
    assert report.cases > 50
    assert not [f.key for f in report.findings if f.key.startswith("L")]


def test_lifespan_sessions_of_an_app_are_refused_at_once(tmp_path: Path) -> None:
    # A session runs the model app; an app's own lifespan already runs around
    # each of its http runs. Refused before the first case, not as a traceback.
    run = subprocess.run(
        [
            *(sys.executable, "-m", "asgifuzz", "fuzz", "--scope", "http,lifespan"),
            *("--app", "lifespan_code:StartupReporter", "--max-time", "30"),
            *("--no-database", "--progress", "off", "--json", str(tmp_path / "o")),
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "--scope http,lifespan with --app lifespan_code:StartupReporter" in (
        run.stderr
    )
    assert "drop lifespan from --scope" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()
