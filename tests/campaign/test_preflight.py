"""A campaign's outputs, database and workers are checked before the first case."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from asgifuzz._campaign import preflight
from asgifuzz._campaign.campaign import FuzzConfig
from asgifuzz._cli.main import main

FUZZ = ["fuzz", "--max-time", "30", "--no-database", "--progress", "off"]
ROOT = os.geteuid() == 0  # root writes everywhere: permission checks cannot fail


def _refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    assert main(argv) == 2
    # Refused before the first case: a 30 s budget was not spent.
    assert time.monotonic() - start < 15
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("asgifuzz: error: ")
    assert message in err[0]
    assert "cases run" not in captured.out


def test_json_naming_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused([*FUZZ, "--json", str(tmp_path)], "is a directory", capsys)


def test_corpus_naming_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "corpus"
    file.write_text("")
    _refused([*FUZZ, "--corpus", str(file)], "is a file", capsys)


@pytest.mark.parametrize("option", ["--junit", "--report", "--json"])
def test_an_output_under_a_file(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "deeper" / "out.txt"
    _refused([*FUZZ, option, str(target)], "is a file, so the directory", capsys)
    assert not (tmp_path / "file").is_dir()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redis://nohost:1"])
def test_an_unreachable_redis(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("redis")
    argv = ["fuzz", "--max-time", "30", "--progress", "off", "--database", url]
    _refused(argv, "cannot reach Redis", capsys)


@pytest.mark.skipif(ROOT, reason="root may write a read-only directory")
def test_a_read_only_database_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # pragma: no cover - CI runs as root here
    db = tmp_path / "db"
    db.mkdir()
    db.chmod(0o500)
    argv = ["fuzz", "--max-time", "30", "--progress", "off", "--database", str(db)]
    _refused(argv, "read-only", capsys)


def test_progress_every_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*FUZZ, "--progress-every", "0"])
    assert exit_.value.code == 2
    assert "need a number of seconds, above 0" in capsys.readouterr().err


def test_workers_above_the_cpus_are_capped_with_a_warning() -> None:
    cpus = preflight.usable_cpus()
    warnings: list[str] = []
    config = preflight.check(FuzzConfig(workers=cpus + 5, database=None), warnings)
    assert config.workers == cpus
    assert warnings == [
        f"--workers {cpus + 5} is more than the {cpus} CPU(s) this process may "
        f"use; running {cpus} worker(s)"
    ]
    assert preflight.check(FuzzConfig(workers=1, database=None), warnings).workers == 1
    assert len(warnings) == 1


def test_good_outputs_pass(tmp_path: Path) -> None:
    config = FuzzConfig(
        database=str(tmp_path / "db"),
        corpus=tmp_path / "new" / "corpus",
        json=tmp_path / "out" / "s.json",
        junit=tmp_path / "j.xml",
        report=tmp_path / "r.md",
    )
    assert preflight.check(config) == config
    assert list(tmp_path.iterdir()) == []  # checking writes nothing
