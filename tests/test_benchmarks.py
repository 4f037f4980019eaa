"""The benchmark scripts still run: each core function on a tiny budget.

The figures themselves are not checked (they depend on the machine); the real
runs are ``python benchmarks/throughput.py`` and ``python benchmarks/time_to_bug.py``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Stack

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def throughput() -> ModuleType:
    return _load("throughput")


@pytest.fixture(scope="module")
def ttb() -> ModuleType:
    return _load("time_to_bug")


def test_throughput_measures_every_mode_on_the_same_cases(
    throughput: ModuleType,
) -> None:
    lines: list[str] = []
    result = throughput.measure(
        throughput.MODES, examples=20, repeat=1, warmup=2, log=lines.append
    )
    modes = result["modes"]
    assert set(modes) | set(result["skipped"]) == set(throughput.MODES)
    for mode, per_backend in modes.items():
        for backend, cell in per_backend.items():
            assert cell["cases"] == [20], (mode, backend)
            assert cell["median_rate"] > 0
    assert modes["full"]["asyncio"]["answered"][0] > 0
    assert set(result["full_over_hypothesis"]) == {"asyncio", "trio"}
    table = throughput.markdown_table(result)
    assert "full / Hypothesis alone" in table
    assert len(lines) == len(modes) * 2
    json.dumps(result)


def test_throughput_alternates_the_order_of_its_rounds(
    throughput: ModuleType,
) -> None:
    lines: list[str] = []
    result = throughput.measure(
        ["generate", "full"], examples=3, repeat=2, warmup=0, log=lines.append
    )
    runs = [line.split()[2:4] for line in lines]
    first = [["asyncio", "generate"], ["asyncio", "full"]]
    first += [["trio", "generate"], ["trio", "full"]]
    assert runs == first + first[::-1]
    for backend in ("asyncio", "trio"):
        full = result["modes"]["full"][backend]["rates"]
        alone = result["modes"]["generate"][backend]["rates"]
        # The median of the paired ratios: of two rounds, their mean.
        paired = sum(f / a for f, a in zip(full, alone, strict=True)) / 2
        assert result["full_over_hypothesis"][backend] == pytest.approx(
            paired, abs=0.01
        )


def test_throughput_time_budget_and_missing_modes(
    throughput: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throughput, "available", lambda m: "ImportError: no httpx")
    result = throughput.measure(
        ["generate"], ["trio"], seconds=0.01, batch_size=5, log=lambda s: None
    )
    assert result["modes"] == {}
    assert result["skipped"] == {"generate": "ImportError: no httpx"}
    assert "n/a" in throughput.markdown_table(result)


def test_throughput_seconds_budget_runs_batches(throughput: ModuleType) -> None:
    result = throughput.measure(
        ["generate"],
        ["asyncio"],
        seconds=0.0,
        batch_size=5,
        repeat=1,
        warmup=0,
        log=lambda s: None,
    )
    assert result["modes"]["generate"]["asyncio"]["cases"] == [5]
    assert result["full_over_hypothesis"] == {}


def test_throughput_main_writes_json_and_markdown(
    throughput: ModuleType, tmp_path: Path
) -> None:
    out, md = tmp_path / "t.json", tmp_path / "t.md"
    argv = ["--examples", "5", "--repeat", "1", "--warmup", "0"]
    argv += ["--modes", "generate,call,full", "--backends", "trio"]
    assert throughput.main([*argv, "--json", str(out), "--markdown", str(md)]) == 0
    data = json.loads(out.read_text())
    assert data["machine"]["cores"] >= 1
    assert "loadavg_start" in data["machine"]
    assert "full / Hypothesis alone" in md.read_text()
    with pytest.raises(SystemExit):
        throughput.main(["--modes", "nope"])


def _fuzz_json(*findings: tuple[str, float, int]) -> dict[str, Any]:
    return {
        "cases": 1000,
        "findings": [
            {
                "key": key,
                "signature": key,
                "first_seen_s": s,
                "first_seen_cases": n,
                "messages": [f"[{key}] evidence"],
                "case": {},
            }
            for key, s, n in findings
        ],
    }


def test_time_to_bug_reads_the_findings_of_a_bug(ttb: ModuleType) -> None:
    data = _fuzz_json(("I5:blocking", 0.3, 26), ("I4:response", 5.7, 352))
    seen = ttb.findings_with(data, ("I4:response",))
    assert [(s.key, s.seconds, s.cases) for s in seen] == [("I4:response", 5.7, 352)]
    assert seen[0].message == "[I4:response] evidence"
    assert ttb.findings_with(data, ("I6:collapsed",)) == []


def test_time_to_bug_keys_come_from_the_corpus(ttb: ModuleType) -> None:
    keys = ttb.corpus_keys(ttb.ROOT / "corpus")
    assert keys["K1"] == ("I1:RuntimeError",)
    assert keys["K2"] == ("I4:response",)
    assert {"K3", "K4", "K5"} <= set(keys)
    chosen = ttb.bugs(ttb.ROOT / "corpus", ["K1", "K5"])
    assert [b.name for b in chosen] == ["K1a", "K1b", "K5"]
    with pytest.raises(SystemExit):
        ttb.bugs(BENCHMARKS, ["K2"])  # no corpus there


def test_time_to_bug_summary(ttb: ModuleType) -> None:
    bug = ttb.Bug("K2", "K2", "0.27.0", "0.28.0", ("I4:response",))

    def run(seed: int, role: str, *seen: tuple[float, int, str]) -> Any:
        r = ttb.Run("K2", role, "x", seed, wall_s=61.0, cases=5000)
        r.seen = [ttb.Seen("I4:response", s, n, replay) for s, n, replay in seen]
        return r

    runs = [
        run(0, "affected", (2.0, 100, "passes")),
        run(1, "affected", (4.0, 300, "other")),
        run(2, "affected", (1.0, 50, "fails")),  # another bug with the key: masked
        run(3, "affected", (70.0, 9000, "passes")),  # after the budget
        run(0, "fixed", (3.0, 200, "fails")),
        run(1, "fixed"),
    ]
    (row,) = ttb.summarize(runs, [bug], 60.0)
    assert row["runs"] == 4
    assert row["detected"] == 2
    assert row["masked"] == 1
    assert row["median_s"] == math.inf  # two of four undetected
    assert row["worst_s"] == math.inf
    assert (row["fixed_runs"], row["fixed_key_seen"]) == (2, 1)
    assert row["fixed_key_also_affected"] == 1
    (row,) = ttb.summarize(runs[:2], [bug], 60.0)
    assert (row["median_s"], row["worst_s"], row["median_cases"]) == (3.0, 4.0, 200)
    table = ttb.markdown_table(ttb.summarize(runs, [bug], 60.0), 60.0)
    assert "2/4 (1 masked)" in table
    assert "0.28.0: 1/2 (1 also fail on 0.27.0)" in table
    assert "3.0 s" in ttb.markdown_table([row], 60.0)


def test_time_to_bug_report_and_runner(ttb: ModuleType, tmp_path: Path) -> None:
    bug = ttb.Bug("K5", "K5", "1.2.1", "1.3.0", ("I6:collapsed",))

    def one(b: Any, role: str, seed: int, core: int | None, arm: str) -> Any:
        r = ttb.Run(b.name, role, "1.2.1", seed, wall_s=1.0, cases=10, arm=arm)
        if seed == 0:
            r.seen = [ttb.Seen("I6:collapsed", 0.5, 5, "passes")]
        elif role == "fixed":
            r.error = "fuzz exited 2: boom"
        return r

    saved: list[int] = []
    plan = [
        (bug, "affected", 0, "swarm"),
        (bug, "affected", 1, "swarm"),
        (bug, "fixed", 1, "swarm"),
        (bug, "affected", 0, "no-swarm"),
    ]
    runs = ttb.run_all(plan, 2, one, lambda rs: saved.append(len(rs)))
    assert saved == [1, 2, 3, 4]
    # One row per bug and arm, and the arm's environment for its fuzz runs.
    rows = ttb.summarize(runs, [bug], 60.0)
    assert sorted((r["arm"], r["runs"]) for r in rows) == [
        ("no-swarm", 1),
        ("swarm", 2),
    ]
    assert "| K5 | no-swarm |" in ttb.markdown_table(rows, 60.0)
    assert ttb._clean_env(["ASGIFUZZ_SWARM=0"])["ASGIFUZZ_SWARM"] == "0"
    assert ttb._is_assignment("ASGIFUZZ_SWARM=0")
    assert not ttb._is_assignment("--points=0")
    runs = [r for r in runs if r.arm == "swarm"]  # completion order varies

    class Args:
        max_time, seeds, fixed_seeds, jobs = 60.0, 2, 1, 2

    machine = {**_machine(), "release_versions": {"1.2.1": {"anyio": "4.12.1"}}}
    data, text = ttb.report(runs, [bug], Args, machine, "cmd")
    (row,) = data["summary"]
    assert row["worst_s"] is None
    assert row["errors"] == 1
    assert "| K5 |" in text
    assert "1.2.1 (anyio 4.12.1)" in text
    result = tmp_path / "ttb.json"
    result.write_text(json.dumps(data))  # no infinities left
    md = tmp_path / "ttb.md"
    assert ttb.main(["--resummarize", str(result), "--markdown", str(md)]) == 0
    assert md.read_text() == text


def _machine() -> dict[str, Any]:
    return dict(_load("_machine").describe((0.5, 0.5, 0.5)))


def test_machine_description() -> None:
    machine = _machine()
    assert machine["loadavg_start"] == [0.5, 0.5, 0.5]
    assert machine["versions"]["starlette"]
    text = _load("_machine").markdown(machine)
    assert "load average at the start 0.50, 0.50, 0.50" in text
    assert _load("_machine").venv_versions(sys.executable)["starlette"]
    assert _load("_machine").venv_versions("/bin/false") == {}


def test_memory_samples_the_rss_of_a_short_fuzz_run(tmp_path: Path) -> None:
    memory = _load("memory")
    out = tmp_path / "m.json"
    argv = ["--max-time", "3", "--every", "0.5", "--backend", "trio"]
    assert memory.main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["samples"]
    assert all(mb > 0 for _, mb in data["samples"])
    assert data["peak_mb"] > 0
    assert data["marks"] == {}
    assert data["last_over_1min"] is None
    assert "| peak |" in memory.table(data, 3.0)


def test_the_supervisor_benchmark_times_the_heartbeat_against_the_watchdog() -> None:
    supervisor = _load("supervisor")
    plain, beat, work = supervisor.per_case(4)
    assert plain > 0
    assert beat > 0
    assert 0 < work < plain
    assert len(supervisor.draw(4)) == 4


def test_the_points_benchmark_pairs_the_arms_on_the_same_cases(
    tmp_path: Path,
) -> None:
    points = _load("points")
    # A key no case shows: each arm draws its whole budget, the same cases.
    on = points.one(0, 16, "I0:never", "", 4)
    off = points.one(0, 0, "I0:never", "", 4)
    assert (on["found"], off["found"]) == (False, False)
    assert on["cases"] == off["cases"] == off["runs"] <= 4
    assert on["runs"] >= on["cases"]
    out = tmp_path / "p.json"
    argv = ["--seeds", "1", "--key", "I0:never", "--max-cases", "2", "--json", str(out)]
    assert points.main([*argv, "--guidance"]) == 0
    data = json.loads(out.read_text())
    assert set(data["summary"]) == {"guided", "unguided"}
    assert [r["arm"] for r in data["runs"]] == ["guided", "unguided"]
    assert data["summary"]["guided"]["found"] == "0/1"


@pytest.fixture(scope="module")
def instructions() -> ModuleType:
    return _load("instructions")


def test_instructions_per_case_and_the_ratio(instructions: ModuleType) -> None:
    counts = {"generate": 3_000, "full": 4_000}
    calls: list[list[str]] = []

    def fake_valgrind(argv: list[str], env: dict[str, str]) -> str:
        calls.append(argv)
        assert env["PYTHONHASHSEED"] == "0"
        mode, n = argv[-3], int(argv[-1])
        return f"==1== Collected : {1_000_000 + counts[mode] * n}\n"

    lines: list[str] = []
    result = instructions.measure(
        ["generate", "full"], ["trio"], 10, fake_valgrind, lines.append
    )
    assert result["per_case"] == {"generate": {"trio": 3000}, "full": {"trio": 4000}}
    assert result["full_over_hypothesis"] == {"trio": 0.75}
    assert [c[-1] for c in calls] == ["0", "10", "0", "10"]
    assert len(lines) == 2
    with pytest.raises(RuntimeError, match="no instruction count"):
        instructions.instructions("full", "trio", 1, lambda argv, env: "boom")


def test_instructions_child_runs_the_throughput_batch(
    instructions: ModuleType,
) -> None:
    assert instructions.main(["--child", "generate", "asyncio", "2"]) == 0


def test_instructions_needs_valgrind(
    instructions: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit):
        instructions.main(["--examples", "1"])


def test_revisions_pairs_full_with_hypothesis_alone_round_by_round() -> None:
    revisions = _load_with_machine("revisions")
    rates = {
        "full": {"trio": {"rate": [50.0, 90.0, 60.0], "cpu": [80.0, 80.0, 80.0]}},
        "generate": {"trio": {"rate": [100.0, 100.0, 100.0], "cpu": [100.0] * 3}},
    }
    assert revisions._over_generate(rates) == {"trio": {"rate": 0.6, "cpu": 0.8}}
    assert revisions._over_generate({"full": rates["full"]}) == {}


def _load_with_machine(name: str) -> ModuleType:
    # revisions.py imports its sibling _machine as a top-level module.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return _load(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_conjunctions_of_the_features_of_cases(tmp_path: Path) -> None:
    conj = _load("conjunctions")

    case = Case(
        stack=Stack((Layer("bhm.read_body"), Layer("starlette.gzip"))),
        endpoint=Endpoint("echo"),
        request=Request(headers=(("content-type", "application/json"),)),
        client=Client("receive", at=1),
    )
    assert conj.features(case) == {
        "family:bhm",
        "layer:read_body",
        "layer:starlette.gzip",
        "endpoint:echo",
        "content:json",
        "disconnect:receive",
        "server:uvicorn",
    }
    assert set(conj.features(case)) <= set(conj.all_features())
    assert conj.combinable(("layer:read_body", "layer:catch", "endpoint:echo"))
    assert not conj.combinable(("endpoint:echo", "endpoint:plain"))
    samples = [conj.features(case), conj.features(Case())]
    pairs = conj.probabilities(samples, 2, conj.all_features())
    assert pairs[("endpoint:echo", "disconnect:receive")] == 0.5
    assert pairs[("endpoint:plain", "content:none")] == 0.5
    assert ("endpoint:echo", "endpoint:plain") not in pairs
    out = tmp_path / "c.json"
    assert conj.main(["--cases", "12", "--rarest", "3", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for arm in ("off", "on"):
        assert data["arms"][arm]["sampled"] == 12
        assert len(data["arms"][arm]["pairs"]["rarest"]) == 3
    assert data["backend"] == "independent"
    md = tmp_path / "c.md"
    assert (
        conj.main(["--cases", "4", "--backend", "hypothesis", "--markdown", str(md)])
        == 0
    )
    assert "drawn under the hypothesis backend" in md.read_text()
