"""The request vocabulary switches middleware on: a middleware that crashes only
on a cookie, only on ``accept-encoding: br`` or only on a non-UTF-8 form body is
found from the command line within 60 s, with no helper code.

Slow: three ``asgifuzz fuzz --max-cases 1500`` runs, side by side (about a
minute). A budget in cases, not seconds, so that a loaded machine draws the same
cases as an idle one; the time is only an upper bound.
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
#: Generated cases per run (seed 0). Measured: found after 3, 3 and 1131
#: (FormCrash: 43 with ASGIFUZZ_DRAWS=fresh).
CASES = 1500
BUDGET = 60


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each middleware fuzzed from the CLI for `CASES` cases: the JSON reports."""
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
                "--max-cases",
                str(CASES),
                "--max-time",
                str(BUDGET * 10),
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
        output, _ = run.communicate(timeout=BUDGET * 15)
        path = out / f"{name}.json"
        assert path.is_file(), f"{name}: no report\n{output}"
        reports[name] = json.loads(path.read_text())
    return reports


@pytest.mark.parametrize("name", PICKY)
def test_a_picky_middleware_is_found_from_the_cli(
    name: str, reports: dict[str, dict[str, Any]]
) -> None:
    # The user's finding, not Starlette's own bugs found beside it (Starlette's
    # "No response returned." is an I1:RuntimeError too).
    findings = reports[name]["findings"]
    mine = [f for f in findings if f["key"] == PICKY[name] and name in f["signature"]]
    assert len(mine) == 1, [(f["key"], f["signature"]) for f in findings]
    (found,) = mine
    assert found["first_seen_cases"] <= CASES, found["first_seen_cases"]
    layers = [la["kind"] for la in found["case"]["stack"]["layers"]]
    assert f"user.{name}" in layers
