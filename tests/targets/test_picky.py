"""The request vocabulary switches middleware on: a middleware that crashes only
on a cookie, only on ``accept-encoding: br`` or only on a non-UTF-8 form body is
found from the command line within 60 s, with no helper code.

Slow: three ``asgifuzz fuzz --max-time 60`` runs, side by side (about a minute).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
#: The middleware of `picky_code` and the finding each must give.
PICKY = {
    "CookieCrash": "I1:RuntimeError",
    "BrotliCrash": "I1:NotImplementedError",
    "FormCrash": "I1:UnicodeDecodeError",
}
BUDGET = 60


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each middleware fuzzed from the CLI for `BUDGET` seconds: the JSON reports."""
    out = tmp_path_factory.mktemp("picky")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asgifuzz",
                "fuzz",
                "--middleware",
                f"picky_code:{name}",
                "--max-time",
                str(BUDGET),
                "--no-database",
                "--progress",
                "off",
                "--json",
                str(out / f"{name}.json"),
            ],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in PICKY
    }
    reports = {}
    for name, run in runs.items():
        output, _ = run.communicate(timeout=BUDGET * 3)
        path = out / f"{name}.json"
        assert path.is_file(), f"{name}: no report\n{output}"
        reports[name] = json.loads(path.read_text())
    return reports


@pytest.mark.parametrize("name", PICKY)
def test_a_picky_middleware_is_found_from_the_cli(
    name: str, reports: dict[str, dict[str, Any]]
) -> None:
    findings = {f["key"]: f for f in reports[name]["findings"]}
    assert PICKY[name] in findings, sorted(findings)
    found = findings[PICKY[name]]
    # Measured: 0.1 to 17 s (case 3 to 726 of about 2000).
    assert found["first_seen_s"] < BUDGET, found["first_seen_s"]
    layers = [la["kind"] for la in found["case"]["stack"]["layers"]]
    assert f"user.{name}" in layers
