"""``fuzz --max-cases``: a budget in generated cases, the same on any machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asgifuzz._campaign.task import budget, share
from asgifuzz._cli.main import main


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / f"{name}.json"
    args = ["fuzz", "--max-time", "60", "--backend", "asyncio", "--no-database"]
    status = main([*args, "--progress", "off", "--json", str(out), *extra])
    return status, json.loads(out.read_text())


def test_a_case_budget_ends_generation_and_draws_the_same_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, first = _run(tmp_path, "a", "--max-cases", "60")
    assert "fuzzing for 60s or 60 cases on asyncio" in capsys.readouterr().out
    assert first["cases"] == 60
    assert first["generation_s"] < 60  # the cases ended it, not the time
    again = _run(tmp_path, "b", "--max-cases", "60")
    assert again[0] == status
    assert [f["case"] for f in again[1]["findings"]] == [
        f["case"] for f in first["findings"]
    ]


def test_the_budget_is_split_between_the_workers(tmp_path: Path) -> None:
    _, data = _run(tmp_path, "w", "--max-cases", "41", "--workers", "2")
    assert data["cases"] == 41
    assert [share(41, 2, i) for i in (0, 1)] == [21, 20]
    assert share(None, 2, 0) is None
    assert budget(60.0, None) == "60s"


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_a_bad_case_budget_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fuzz", "--max-cases", value])
    assert exc.value.code == 2
    assert f"argument --max-cases: {value!r}: need a number of cases, 1 or more" in (
        capsys.readouterr().err
    )
