"""``asgifuzz matrix``: rows from probes (fake ones: no network, no venv built),
fuzz results and shard matrices merged, the expectations of the corpus."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_bisect import RELEASES as ALL_RELEASES

from asgifuzz._cli import matrix as _matrix_cli
from asgifuzz._cli.main import main as cli
from asgifuzz._corpus.entries import load_corpus, parse_version
from asgifuzz._errors import UsageError
from asgifuzz._oracles.registry import INVARIANTS
from asgifuzz._releases import matrix as _matrix
from asgifuzz._releases import venvs as _venvs
from asgifuzz._releases.matrix import (
    RELEASES,
    ProbeData,
    build_matrix,
    format_markdown,
    format_text,
    probe,
    venv_prober,
)
from asgifuzz._releases.venvs import ReplayError, VenvCache, era_pins

CORPUS = Path(__file__).parents[2] / "corpus"
ENTRIES = load_corpus(CORPUS)


def as_expected(release: str) -> ProbeData:
    """What the corpus says each entry shows on ``release``."""
    return {
        "versions": {"starlette": release, "anyio": "a", "trio": "t"},
        "entries": {
            e.path.name: {"keys": [e.key] if e.affects(release) else [], "error": ""}
            for e in ENTRIES
        },
    }


class FakeProber:
    """Probes as the corpus expects, except for the changes a test makes."""

    def __init__(self, **changes: dict[str, list[str]]) -> None:
        self.changes = changes  # release (with _ for .) -> {entry name: keys}
        self.calls: list[str] = []

    def __call__(self, release: str) -> ProbeData:
        self.calls.append(release)
        data = as_expected(release)
        for name, keys in self.changes.get(release.replace(".", "_"), {}).items():
            data["entries"][name] = {"keys": keys, "error": ""}
        return data


K1 = "k1-bhm-no-response-returned-client-gone.json"


def test_the_headline_releases_cover_every_range_of_the_corpus() -> None:
    for entry in ENTRIES:
        for lo, hi in entry.affected:
            assert lo in RELEASES, (entry.path.name, lo)
            assert hi in RELEASES, (entry.path.name, hi)
            later = [r for r in ALL_RELEASES if parse_version(r) > parse_version(hi)]
            if later:  # the first release after the range shows where it ends
                assert later[0] in RELEASES, (entry.path.name, later[0])
    assert RELEASES[-1] == ALL_RELEASES[-1]  # and the newest
    assert list(RELEASES) == sorted(RELEASES, key=parse_version)
    assert all(era_pins("starlette", r) for r in RELEASES)  # every one has its era


def test_a_matrix_as_the_corpus_expects() -> None:
    lines: list[str] = []
    prober = FakeProber()
    m = build_matrix(
        CORPUS, releases=["0.20.4", "1.10.0"], prober=prober, log=lines.append
    )
    assert prober.calls == ["0.20.4", "1.10.0"]
    assert (
        lines[0] == f"matrix: replaying {len(ENTRIES)} entries on starlette 0.20.4 ..."
    )
    old, new = m.rows
    assert m.problems(old) == m.problems(new) == []
    label = m.labels()[K1]
    assert label in m.cell(old, "I1")  # K1 fails on 0.20.4 ...
    assert label not in m.cell(new, "I1")  # ... and is fixed in 1.10.0
    text = format_text(m)
    header = text.splitlines()[0].split()
    assert header == ["release", "anyio/trio", *INVARIANTS, "fuzz", "as", "expected"]
    assert text.splitlines()[1].startswith("0.20.4   a/t")
    assert f"{label} = k1-bhm-no-response-returned-client-gone (I1:RuntimeError" in text
    assert "yes" in text.splitlines()[1]


def test_a_release_that_stops_showing_a_known_bug_or_shows_it_elsewhere() -> None:
    swallow = "bhm-swallows-background-error.json"
    prober = FakeProber(
        # K1 stops failing inside its range and shows I3 instead
        **{"0_20_4": {K1: ["I3"]}, "1_10_0": {swallow: ["I8:escaped-"]}},
    )
    m = build_matrix(CORPUS, releases=["0.20.4", "1.10.0"], prober=prober)
    old, new = m.rows
    (problem,) = m.problems(old)
    assert problem.startswith(f"{K1}: stopped showing I1:RuntimeError inside")
    assert m.labels()[K1] + "~" in m.cell(old, "I3")  # shown, besides its own
    (problem,) = m.problems(new)
    assert "outside its affected range 0.17.0-0.45.1 (widen the range)" in problem
    assert "NO (1)" in format_text(m).splitlines()[1]


def test_a_replay_without_verdict_is_a_problem_too() -> None:
    def broken(release: str) -> ProbeData:
        raise ReplayError("the venv exploded")

    m = build_matrix(CORPUS, releases=["0.27.0"], prober=broken)
    (row,) = m.rows
    problems = m.problems(row)
    assert len(problems) == len(ENTRIES)
    assert "no verdict (the venv exploded)" in problems[0]
    assert all(m.cell(row, i) == [] for i in INVARIANTS)


def _fuzz_json(path: Path, release: str, *keys: str) -> Path:
    findings = [{"key": k, "case": {}} for k in keys]
    data = {"starlette": release, "cases": 900, "cases_per_s": 150.0}
    path.write_text(json.dumps({**data, "findings": findings, "interrupted": True}))
    return path


def test_fuzz_findings_merge_in_and_new_kinds_are_problems(tmp_path: Path) -> None:
    known = _fuzz_json(tmp_path / "a.json", "1.10.0", "I1:RuntimeError")
    m = build_matrix(CORPUS, releases=["1.10.0"], fuzz=[known], prober=FakeProber())
    (row,) = m.rows
    assert m.problems(row) == []
    assert "900 cases, 150/s, 1 found (interrupted)" in format_text(m)
    new = _fuzz_json(tmp_path / "b.json", "1.10.0", "I2:late-body", "I3")
    m = build_matrix(CORPUS, releases=["1.10.0"], fuzz=[new], prober=FakeProber())
    (row,) = m.rows
    (problem,) = m.problems(row)
    assert problem.startswith("fuzzing found a new kind of failure: I2:late-body")
    assert m.cell(row, "I2") == ["new:I2:late-body"]
    assert "new:" not in " ".join(m.cell(row, "I3"))  # I3 is known on 1.10.0


def test_fuzz_for_a_release_without_a_row_is_bad_usage(tmp_path: Path) -> None:
    other = _fuzz_json(tmp_path / "a.json", "0.38.2")
    with pytest.raises(UsageError, match=r"Starlette 0\.38\.2 has no row"):
        build_matrix(CORPUS, releases=["1.10.0"], fuzz=[other], prober=FakeProber())


def _args(tmp_path: Path, **kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "releases": None,
        "installed": False,
        "corpus": CORPUS,
        "backend": "both",
        "fuzz": [],
        "merge": [],
        "cache": None,
        "json": tmp_path / "m.json",
        "markdown": tmp_path / "m.md",
        "check": True,
    }
    return argparse.Namespace(**{**base, **kw})


def test_main_writes_json_and_markdown_and_shards_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_keys: list[str] = []
    prober = FakeProber(**{"0_38_2": {K1: no_keys}})
    args = _args(tmp_path, releases="0.20.4, 0.38.2")
    assert _matrix_cli.main(args, prober=prober) == 1  # --check: K1 stopped on 0.38.2
    out = capsys.readouterr().out
    assert "0.38.2: k1-bhm-no-response-returned-client-gone.json: stopped" in out
    data = json.loads((tmp_path / "m.json").read_text())
    assert [r["release"] for r in data["rows"]] == ["0.20.4", "0.38.2"]
    assert data["entries"]["E1"]["path"].endswith(".json")
    md = (tmp_path / "m.md").read_text()
    assert "| release | anyio/trio | I1 |" in md
    assert "## Not as expected\n\n- 0.38.2: k1-" in md
    # a second shard, merged: rows from both, sorted by release
    shard = _args(tmp_path, releases="0.15.0", json=tmp_path / "s.json", check=False)
    assert _matrix_cli.main(shard, prober=FakeProber()) == 0
    capsys.readouterr()
    merged = _args(
        tmp_path, merge=[tmp_path / "m.json", tmp_path / "s.json"], json=None
    )
    assert _matrix_cli.main(merged) == 1
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:4]] == [
        "0.15.0",
        "0.20.4",
        "0.38.2",
    ]
    clean = _args(tmp_path, merge=[tmp_path / "s.json"], markdown=None, json=None)
    assert _matrix_cli.main(clean) == 0
    assert "Every release is as the corpus expects." in format_markdown(
        build_matrix(CORPUS, merge=[tmp_path / "s.json"])
    )


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    matrix = ["matrix", "--corpus", str(CORPUS), "--merge"]
    assert cli([*matrix, str(bad)]) == 2
    assert "expected a JSON object" in capsys.readouterr().err
    assert cli([*matrix, str(tmp_path / "none.json")]) == 2
    assert "cannot read it as JSON" in capsys.readouterr().err


def _small_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in (K1, "is-disconnected-drops-body-truncated.json"):
        shutil.copy(CORPUS / name, corpus / name)
    return corpus


def test_probe_replays_the_corpus_here(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path)
    data = probe(corpus, ("asyncio",))
    assert set(data["entries"]) == {K1, "is-disconnected-drops-body-truncated.json"}
    assert "I3" in data["entries"]["is-disconnected-drops-body-truncated.json"]["keys"]
    assert data["versions"]["starlette"]
    # the CLI's --installed row is this interpreter's Starlette
    assert (
        cli(["matrix", "--installed", "--corpus", str(corpus), "--backend", "trio"])
        == 0
    )


def test_probe_records_a_case_this_release_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(case: object, backends: object) -> None:
        raise RuntimeError("no such middleware here")

    monkeypatch.setattr(_matrix, "judge", explode)
    data = probe(_small_corpus(tmp_path), ("asyncio",))
    assert data["entries"][K1] == {
        "keys": [],
        "error": "RuntimeError: no such middleware here",
    }


def test_python_dash_m_prints_the_probe_as_json(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path)
    cmd = [sys.executable, "-m", "asgifuzz._releases.matrix", str(corpus), "asyncio"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert set(json.loads(out)["entries"]) == {
        K1,
        "is-disconnected-drops-body-truncated.json",
    }


def test_the_venv_prober_runs_the_probe_in_the_release_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Sequence[str]] = []

    def run(cmd: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        if "0.27.0" in str(cwd):
            return subprocess.CompletedProcess(cmd, 1, "", "Traceback\nImportError: x")
        return subprocess.CompletedProcess(
            cmd, 0, "noise\n" + json.dumps({"ok": 1}), ""
        )

    monkeypatch.setattr(_venvs, "_run_command", run)
    cache = VenvCache(tmp_path)
    for release in ("1.10.0", "0.27.0"):  # ready venvs: nothing is built
        venv = cache.path("starlette", release)
        venv.mkdir(parents=True)
        marker = {
            "pins": era_pins("starlette", release),
            "asgifuzz": _venvs.asgifuzz_source(),
        }
        (venv / "asgifuzz-venv.json").write_text(json.dumps(marker))
    prober = venv_prober(CORPUS, "trio", tmp_path)
    assert prober("1.10.0") == {"ok": 1}
    assert list(seen[0][1:3]) == ["-m", "asgifuzz._releases.matrix"]
    assert seen[0][-1] == "trio"
    with pytest.raises(
        ReplayError, match=r"starlette 0\.27\.0 exited 1: .*ImportError"
    ):
        prober("0.27.0")


def test_the_nightly_shards_cover_the_headline_releases() -> None:
    import re

    workflow = CORPUS.parent / ".github" / "workflows" / "nightly.yml"
    shards = re.findall(r'^\s+- "([\d.,]+)"$', workflow.read_text(), re.MULTILINE)
    assert len(shards) > 1
    assert [r for shard in shards for r in shard.split(",")] == list(RELEASES)
