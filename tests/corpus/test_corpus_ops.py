"""Corpus writing under contention, and the ``asgifuzz corpus`` operations."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from asgifuzz._cli.main import main
from asgifuzz._corpus.entries import case_size, load_corpus, load_entry, save_finding
from asgifuzz.models import Case, Layer, Request, Stack


def _case(n: int) -> Case:
    """Cases that grow with ``n``: one more body chunk each."""
    return Case(request=Request(body=tuple(b"x" for _ in range(n))))


def test_smallest_entry_per_signature_wins(tmp_path: Path) -> None:
    big = save_finding(tmp_path, "I3", _case(3), "asyncio", ["big"])
    assert big is not None
    small = save_finding(tmp_path, "I3", _case(1), "asyncio", ["small"])
    assert small is not None
    assert save_finding(tmp_path, "I3", _case(2), "asyncio", ["middle"]) is None
    (entry,) = load_corpus(tmp_path)
    assert entry.path == small
    assert not big.exists()
    other = save_finding(
        tmp_path, "I3", _case(3), "asyncio", ["x"], signature="I3@elsewhere"
    )
    assert other is not None
    assert len(load_corpus(tmp_path)) == 2


def _writer(directory: str, n: int) -> None:
    save_finding(Path(directory), "I1:RuntimeError", _case(n), "trio", [f"#{n}"])


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), n)) for n in range(8, 0, -1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    (entry,) = load_corpus(tmp_path)  # one per signature, every file whole
    assert case_size(entry.case) == case_size(_case(1))
    assert not list(tmp_path.glob(".*.tmp"))


def test_merge_minimize_list_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    save_finding(mine, "I3", _case(3), "asyncio", ["mine"])
    save_finding(theirs, "I3", _case(1), "asyncio", ["theirs, smaller"])
    save_finding(theirs, "I5:never", _case(1), "trio", ["new to me"])
    assert main(["corpus", "merge", str(theirs), "--into", str(mine)]) == 0
    assert sorted(e.key for e in load_corpus(mine)) == ["I3", "I5:never"]
    assert min(case_size(e.case) for e in load_corpus(mine)) == case_size(_case(1))
    # minimize: copy a bigger duplicate in by hand, as a careless merge would
    dup = json.loads(load_corpus(theirs)[0].path.read_text())
    dup["case"]["request"]["body"] = ["x", "x", "x", "x"]
    (mine / "dup.json").write_text(json.dumps(dup))
    assert main(["corpus", "minimize", str(mine)]) == 0
    assert len(load_corpus(mine)) == 2
    capsys.readouterr()
    assert main(["corpus", "list", str(mine)]) == 0
    assert "I5:never  new" in capsys.readouterr().out
    assert main(["corpus", "show", str(load_corpus(mine)[0].path)]) == 0
    assert '"case"' in capsys.readouterr().out


def test_prune_marks_or_drops_entries_that_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passing = Case(stack=Stack(layers=(Layer("asgi.passthrough"),)))
    save_finding(tmp_path, "I4:app", passing, "asyncio", ["made up: it never failed"])
    assert main(["corpus", "prune", str(tmp_path)]) == 0
    (entry,) = load_corpus(tmp_path)
    assert entry.status == "fixed"
    assert "marked" in capsys.readouterr().out
    save_finding(tmp_path / "b", "I4:app", passing, "asyncio", ["again"])
    assert main(["corpus", "prune", str(tmp_path / "b"), "--drop"]) == 0
    assert load_corpus(tmp_path / "b") == []


def test_corpus_show_of_a_hostile_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "key": "I1", "status": "new", "case": {"stack": 3}}')
    assert main(["corpus", "show", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err


CORPUS = Path(__file__).parents[2] / "corpus"
#: A case that fails on every release the suite runs on (the shipped entry).
HANG = load_entry(CORPUS / "is-disconnected-drops-body-hang.json").case


def test_prune_never_marks_a_still_failing_entry_fixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Recorded under another key: it fails differently now, so it is kept.
    save_finding(tmp_path, "I2:type", HANG, "asyncio", ["recorded under I2"])
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    assert main(["corpus", "prune", str(tmp_path), "--drop"]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == before
    assert main(["corpus", "prune", str(tmp_path)]) == 0
    (entry,) = load_corpus(tmp_path)
    assert entry.status == "new"
    assert "marked" not in capsys.readouterr().out


def test_prune_keeps_an_entry_that_fails_on_some_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgifuzz._cli import corpus as corpus_cli
    from asgifuzz._oracles.verdict import Verdict, judge

    passing = Case(stack=Stack(layers=(Layer("asgi.passthrough"),)))
    save_finding(tmp_path, "I4:app", passing, "asyncio", ["flaky"])
    calls = iter(range(100))

    def sometimes(case: Case, backends: tuple[str, ...]) -> Verdict:
        verdict = judge(case, backends)
        if next(calls) == 1:  # the second of the replays fails
            verdict.violations["asyncio"] = HANG_VIOLATIONS
        return verdict

    from asgifuzz._oracles.violations import Violation

    HANG_VIOLATIONS = [Violation("I4", "made up for the test", "app")]
    monkeypatch.setattr(corpus_cli, "judge", sometimes)
    assert main(["corpus", "prune", str(tmp_path)]) == 0
    (entry,) = load_corpus(tmp_path)
    assert entry.status == "new"


def test_minimize_keeps_the_entry_that_still_fails(tmp_path: Path) -> None:
    small = Case(stack=Stack(layers=(Layer("asgi.passthrough"),)))  # passes now
    assert case_size(small) < case_size(HANG)
    save_finding(tmp_path, "I4:response", HANG, "asyncio", ["fails"], signature="S")
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    # The same signature for a smaller case that passes now (a stale entry).
    data["case"] = json.loads(small.to_json())
    (tmp_path / "stale.json").write_text(json.dumps(data))
    assert main(["corpus", "minimize", str(tmp_path)]) == 0
    (entry,) = load_corpus(tmp_path)
    assert entry.case == HANG


@pytest.mark.parametrize("op", ["prune", "minimize"])
def test_an_entry_naming_a_target_this_run_does_not_allow_is_refused(
    op: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = Case(stack=Stack(layers=(Layer("user.Greedy"),)))
    targets = {"middleware": {"Greedy": "user_code:Greedy"}}
    save_finding(tmp_path, "I3", case, "asyncio", ["x"], targets=targets)
    save_finding(tmp_path, "I3", _case(2), "asyncio", ["y"], signature="other")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    none = ["--config", str(tmp_path / "none.toml")]
    assert main(["corpus", op, str(tmp_path), *none]) == 2
    err = capsys.readouterr().err
    assert "--middleware 'Greedy=user_code:Greedy'" in err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == before
