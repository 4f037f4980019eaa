"""``asgifuzz bisect``: the search, the release list, era pins and the venv cache.

Nothing here touches the network or builds a real venv: releases come from a
canned ``pip index versions`` output, replays from fake runners, and venv builds
from a fake command runner.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from asgifuzz._cli import bisect as _bisect_cli
from asgifuzz._cli import replay as _replay
from asgifuzz._cli.main import main as cli
from asgifuzz._cli.main import parser
from asgifuzz._errors import AsgiFuzzError, UsageError
from asgifuzz._oracles.verdict import Verdict
from asgifuzz._oracles.violations import Violation
from asgifuzz._releases import bisect as _bisect
from asgifuzz._releases import venvs as _venvs
from asgifuzz._releases.bisect import BisectResult, FailingRange, bisect, format_result
from asgifuzz._releases.venvs import (
    ReplayError,
    ReplayStatus,
    VenvBuildError,
    VenvCache,
    era_pins,
    releases,
)
from asgifuzz.models import Case

CASE = Path(__file__).parents[2] / "corpus" / "k3-bhm-background-never-runs.json"

# Starlette's real list (pip index versions, newest first), trimmed below 0.13.0,
# with a pre-release and a dev release added to check that they are left out.
PIP_OUTPUT = """\
starlette (1.10.0)
Available versions: 1.10.0, 1.9.0, 1.8.0, 1.7.0, 1.6.0, 1.5.1, 1.5.0, 1.4.1, 1.4.0, \
1.3.1, 1.3.0, 1.2.1, 1.2.0, 1.1.0, 1.0.1, 1.0.0, 1.0.0rc1, 0.52.1, 0.52.0, 0.51.0, \
0.50.0, 0.49.3, 0.49.2, 0.49.1, 0.49.0, 0.48.0, 0.47.3, 0.47.2, 0.47.1, 0.47.0, \
0.46.2, 0.46.1, 0.46.0, 0.45.3, 0.45.2, 0.45.1, 0.45.0, 0.44.0, 0.43.0, 0.42.0, \
0.41.3, 0.41.2, 0.41.0, 0.40.0, 0.39.2, 0.39.1, 0.39.0, 0.38.6, 0.38.5, 0.38.4, \
0.38.3, 0.38.2, 0.38.1, 0.38.0, 0.37.2, 0.37.1, 0.37.0, 0.36.3, 0.36.2, 0.36.1, \
0.36.0, 0.35.1, 0.35.0, 0.34.0, 0.33.0, 0.32.0.post1, 0.32.0, 0.31.1, 0.31.0, \
0.30.0, 0.29.0, 0.28.0, 0.27.0, 0.26.1, 0.26.0.post1, 0.26.0, 0.25.0, 0.24.0, \
0.23.1, 0.23.0, 0.22.0, 0.21.0, 0.20.4, 0.20.3, 0.20.1, 0.20.0, 0.19.1, 0.19.0, \
0.18.0, 0.17.1, 0.17.0, 0.16.0, 0.15.0, 0.15.0.dev1, 0.14.2, 0.14.1, 0.14.0, 0.13.8
  INSTALLED: 1.10.0
"""
RELEASES = releases("starlette", fetch=lambda _: PIP_OUTPUT)


def v(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".post")[0].split("."))


class FakeRunner:
    """Fails on the releases ``fails`` says; counts the calls."""

    def __init__(self, fails: Callable[[tuple[int, ...]], bool]) -> None:
        self.fails = fails
        self.calls: list[str] = []

    def __call__(self, version: str) -> tuple[ReplayStatus, str]:
        self.calls.append(version)
        return ("fails", "") if self.fails(v(version)) else ("passes", "")


def run_bisect(
    runner: Callable[[str], tuple[ReplayStatus, str]], **kwargs: str
) -> tuple[BisectResult, list[str]]:
    lines: list[str] = []
    result = bisect(
        CASE,
        runner=runner,
        list_releases=lambda _: RELEASES,
        log=lines.append,
        **kwargs,
    )
    return result, lines


# releases


def test_releases_are_final_and_oldest_first() -> None:
    assert RELEASES[:4] == ["0.13.8", "0.14.0", "0.14.1", "0.14.2"]
    assert RELEASES[-3:] == ["1.8.0", "1.9.0", "1.10.0"]
    assert "1.0.0rc1" not in RELEASES
    assert not any("dev" in r for r in RELEASES)
    assert sorted(RELEASES, key=v) == RELEASES


def test_a_post_release_stands_for_its_base_release() -> None:
    assert "0.32.0" not in RELEASES
    assert "0.26.0" not in RELEASES
    i = RELEASES.index("0.32.0.post1")
    assert RELEASES[i - 1 : i + 2] == ["0.31.1", "0.32.0.post1", "0.33.0"]


@pytest.mark.parametrize(
    ("package", "output", "match"),
    [
        ("-r requirements.txt", "", "is not a package name"),
        ("nosuchpackage", "ERROR: No matching distribution\n", "found no releases"),
    ],
)
def test_releases_rejects_unknown_packages(
    package: str, output: str, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        releases(package, fetch=lambda _: output)


def test_releases_asks_pip_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Sequence[str]] = []

    def run(cmd: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        if cmd[-1] == "nosuchpackage":
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching dist")
        return subprocess.CompletedProcess(cmd, 0, PIP_OUTPUT, "")

    monkeypatch.setattr(_venvs, "_run_command", run)
    assert releases("starlette") == RELEASES
    assert list(seen[0][1:]) == ["-m", "pip", "index", "versions", "starlette"]
    with pytest.raises(UsageError, match=r"No matching dist.*check the name"):
        releases("nosuchpackage")


# the search


def test_a_single_transition() -> None:
    runner = FakeRunner(lambda r: r >= (0, 38, 3))
    result, lines = run_bisect(runner)
    assert result.ranges == (FailingRange("0.38.3", "1.10.0", None),)
    assert result.versions[0] == "0.15.0"  # the oldest Starlette asgifuzz runs on
    assert len(runner.calls) == len(set(runner.calls)) == len(result.probes)
    assert len(result.probes) <= 11 + 4
    assert lines[0] == "bisect: probe 1: starlette 0.15.0 passes"


def test_a_bug_that_comes_back_shows_as_two_ranges() -> None:
    # K1: fails 0.15.0-0.20.4, fixed in 0.21.0, back in 0.28.0, fixed in 0.38.3
    runner = FakeRunner(
        lambda r: r < (0, 21) or (0, 28) <= r < (0, 38, 3),
    )
    result, _ = run_bisect(runner)
    assert result.ranges == (
        FailingRange("0.15.0", "0.20.4", "0.21.0"),
        FailingRange("0.28.0", "0.38.2", "0.38.3"),
    )
    assert len(result.versions) == 90
    assert result.step == 9  # 11 coarse probes: 0.15.0, every 9th release, 1.10.0
    # then 3 or 4 per boundary (3 boundaries with 8 releases between probes each)
    assert len(result.probes) == 22
    assert len(set(runner.calls)) == len(runner.calls)
    # every probe is recorded with its outcome
    by_version = {p.version: p.outcome for p in result.probes}
    assert by_version["0.20.4"] == by_version["0.38.2"] == "fails"
    assert by_version["0.21.0"] == by_version["0.38.3"] == "passes"


@pytest.mark.parametrize(
    ("fails", "ranges"),
    [
        (False, ()),
        (True, (FailingRange("0.15.0", "1.10.0", None),)),
    ],
)
def test_all_pass_or_all_fail_costs_only_the_coarse_probes(
    fails: bool, ranges: tuple[FailingRange, ...]
) -> None:
    result, _ = run_bisect(FakeRunner(lambda _: fails))
    assert result.ranges == ranges
    assert len(result.probes) == 11


def test_from_and_to_bound_the_range() -> None:
    runner = FakeRunner(lambda r: (0, 38, 3) <= r < (0, 38, 5))
    result, _ = run_bisect(runner, lo="0.38.0", hi="0.39.0")
    assert result.versions == (*(f"0.38.{i}" for i in range(7)), "0.39.0")
    assert result.step == 1  # eight releases: every one is probed
    assert sorted(runner.calls, key=v) == list(result.versions)
    assert result.ranges == (FailingRange("0.38.3", "0.38.4", "0.38.5"),)


def test_from_accepts_the_base_of_a_post_release() -> None:
    result, _ = run_bisect(FakeRunner(lambda _: False), lo="0.32.0", hi="0.33.0")
    assert result.versions == ("0.32.0.post1", "0.33.0")


def test_from_below_0_15_is_refused_for_starlette() -> None:
    with pytest.raises(UsageError, match=r"older than 0\.15\.0"):
        run_bisect(FakeRunner(lambda _: False), lo="0.14.2")


def test_a_narrow_range_between_probes_is_missed() -> None:
    # documented: a range narrower than the sampling step can fall between probes
    result, _ = run_bisect(FakeRunner(lambda r: r == (0, 38, 4)))
    assert result.step > 1
    assert result.ranges == ()
    assert "could be missed" in format_result(result)


def test_a_release_without_a_verdict_is_recorded_and_skipped() -> None:
    def runner(version: str) -> tuple[ReplayStatus, str]:
        if version in ("0.38.3", "0.38.4"):
            raise ReplayError(f"replay on starlette {version} exited 2: bad case")
        return ("fails", "") if v(version) >= (0, 38, 3) else ("passes", "")

    result, _ = run_bisect(runner, lo="0.38.0", hi="0.39.0")
    assert result.ranges == (FailingRange("0.38.5", "0.39.0", None),)
    errors = [p for p in result.probes if p.outcome == "error"]
    assert [p.version for p in errors] == ["0.38.3", "0.38.4"]
    assert "error on 0.38.3: replay on starlette 0.38.3 exited 2" in format_result(
        result
    )


def test_binary_search_steps_over_errors() -> None:
    def runner(version: str) -> tuple[ReplayStatus, str]:
        if version == "0.38.2":
            raise ReplayError("no verdict")
        return ("fails", "") if v(version) >= (0, 38, 3) else ("passes", "")

    result, _ = run_bisect(runner, lo="0.37.0", hi="0.45.0")
    assert result.ranges == (FailingRange("0.38.3", "0.45.0", None),)


def test_failing_with_other_keys_is_not_the_bug() -> None:
    # K3's entry: 0.38.0-0.38.2 fail with another leak, 0.38.3-0.38.4 with its key
    def runner(version: str) -> tuple[ReplayStatus, str]:
        if v(version) < (0, 38, 3):
            return "other", "(I7:asyncgen; was I5:never)"
        return ("fails", "") if v(version) < (0, 38, 5) else ("passes", "")

    result, lines = run_bisect(runner, lo="0.37.0", hi="0.45.0")
    assert result.ranges == (FailingRange("0.38.3", "0.38.4", "0.38.5"),)
    assert "bisect: probe 1: starlette 0.37.0 other" in lines
    text = format_result(result)
    assert "0.37.0 fails differently, " in text
    assert "fails differently on 0.37.0: (I7:asyncgen; was I5:never)" in text
    result, _ = run_bisect(lambda _: ("other", ""), lo="0.38.0", hi="0.38.2")
    assert result.ranges == ()


def test_the_first_fixed_release_can_fail_differently() -> None:
    def runner(version: str) -> tuple[ReplayStatus, str]:
        return ("fails", "") if version == "0.38.3" else ("other", "(I7)")

    result, _ = run_bisect(runner, lo="0.38.3", hi="0.38.4")
    text = format_result(result)
    assert "first fixed in 0.38.4 (where it fails differently)" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lo": "0.99.0"}, r"--from 0.99.0: starlette has no such release"),
        ({"hi": "2.0.0"}, r"--to 2.0.0: starlette has no such release"),
        ({"lo": "0.39.0", "hi": "0.38.0"}, "--from 0.39.0 is after --to 0.38.0"),
        ({"backend": "curio"}, "backend 'curio' is not one of"),
    ],
)
def test_bad_arguments(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        run_bisect(FakeRunner(lambda _: False), **kwargs)


def test_bad_case_files(tmp_path: Path) -> None:
    def go(path: Path) -> None:
        bisect(path, runner=FakeRunner(lambda _: False), list_releases=lambda _: [])

    with pytest.raises(AsgiFuzzError, match="cannot read it"):
        go(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"case": {"format": 99}}')
    with pytest.raises(AsgiFuzzError, match=r"bad\.json: case"):
        go(bad)
    bad.write_text("not json")
    with pytest.raises(AsgiFuzzError, match=r"bad\.json"):
        go(bad)


def test_no_releases() -> None:
    with pytest.raises(UsageError, match="no final releases"):
        bisect(CASE, runner=FakeRunner(lambda _: False), list_releases=lambda _: [])


def test_other_packages_start_at_their_oldest_release() -> None:
    result = bisect(
        CASE,
        package="somepkg",
        runner=FakeRunner(lambda r: r >= (2,)),
        list_releases=lambda _: ["1.0", "1.1", "2.0"],
        log=lambda _: None,
    )
    assert result.ranges == (FailingRange("2.0", "2.0", None),)


# reporting


def test_format_and_data() -> None:
    runner = FakeRunner(lambda r: r < (0, 21) or (0, 28) <= r < (0, 38, 3))
    result, _ = run_bisect(runner, hi="0.38.5")
    text = format_result(result)
    assert "fails from 0.15.0 (the lower bound, or earlier) to 0.20.4; " in text
    assert "first fixed in 0.21.0" in text
    assert "fails from 0.28.0 to 0.38.2; first fixed in 0.38.3" in text
    data = json.loads(json.dumps(result.to_data()))
    assert data["ranges"] == [
        {"first_failing": "0.15.0", "last_failing": "0.20.4", "first_fixed": "0.21.0"},
        {"first_failing": "0.28.0", "last_failing": "0.38.2", "first_fixed": "0.38.3"},
    ]
    assert len(data["probes"]) == len(result.probes)
    assert data["releases"][-1] == "0.38.5"


def test_format_a_range_open_at_the_top() -> None:
    result, _ = run_bisect(FakeRunner(lambda r: r >= (1, 3)), lo="1.0.0")
    assert "fails from 1.3.0 to 1.10.0 (the upper bound); not fixed" in format_result(
        result
    )


# era pins


@pytest.mark.parametrize(
    ("version", "anyio", "trio"),
    [
        ("0.15.0", "3.7.1", "0.22.2"),
        ("0.30.0", "3.7.1", "0.22.2"),
        ("0.31.0", "4.3.0", "0.24.0"),
        ("0.32.0.post1", "4.3.0", "0.24.0"),
        ("0.37.2", "4.3.0", "0.24.0"),
        ("0.38.0", "4.4.0", "0.26.2"),
        ("0.38.6", "4.4.0", "0.26.2"),
        ("0.39.0", "4.7.0", "0.28.0"),
        ("0.45.3", "4.7.0", "0.28.0"),
        ("0.46.0", "4.9.0", "0.29.0"),
        ("0.49.3", "4.9.0", "0.29.0"),
        ("0.52.1", "4.12.1", "0.35.0"),
        ("1.0.0", "4.12.1", "0.35.0"),
        ("1.10.0", "4.12.1", "0.35.0"),
    ],
)
def test_era_pins(version: str, anyio: str, trio: str) -> None:
    pins = era_pins("starlette", version)
    assert pins[:2] == [f"anyio=={anyio}", f"trio=={trio}"]
    assert any(p.startswith("hypothesis") for p in pins)
    assert any(p.startswith("itsdangerous") for p in pins)
    assert ("typing_extensions" in pins) == (version == "0.35.0")


def test_era_pins_of_0_35_0_add_typing_extensions() -> None:
    assert "typing_extensions" in era_pins("Starlette", "0.35.0")
    assert "typing_extensions" not in era_pins("starlette", "0.35.1")


def test_era_pins_refuse_pre_anyio_starlette_and_pin_nothing_elsewhere() -> None:
    with pytest.raises(UsageError, match=r"older than 0\.15\.0"):
        era_pins("starlette", "0.14.2")
    assert all(not p.startswith(("anyio", "trio")) for p in era_pins("httpx", "0.1"))


# the venv cache


class FakeBuilder:
    """Records commands; creates the venv folder; fails where told to."""

    def __init__(
        self, fail_at: str | None = None, replay: tuple[int, str] = (0, "passes")
    ) -> None:
        self.fail_at = fail_at
        self.replay = replay
        self.commands: list[list[str]] = []

    def __call__(
        self, cmd: Sequence[str], cwd: Path | None
    ) -> subprocess.CompletedProcess[str]:
        cmd = list(cmd)
        self.commands.append(cmd)
        if self.fail_at is not None and self.fail_at in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no such version")
        if "venv" in cmd:
            Path(cmd[-1], "bin").mkdir(parents=True)
        if "replay" in cmd:  # replay's first line: "PATH: STATUS"
            code, status = self.replay
            said = f"{cmd[4]}: {status}\n  trio: [I5:never] ...\n" if status else ""
            return subprocess.CompletedProcess(cmd, code, said, "boom")
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_cache_builds_a_venv_with_pip_and_says_each_step(tmp_path: Path) -> None:
    lines: list[str] = []
    fake = FakeBuilder()
    cache = VenvCache(tmp_path, log=lines.append, run=fake, installer="pip")
    venv = cache.ensure("starlette", "0.38.2")
    assert venv == cache.path("starlette", "0.38.2")
    assert venv.name.startswith("starlette-0.38.2-py3.")
    assert [p.name for p in tmp_path.iterdir()] == [venv.name]  # no leftovers
    create, install, own = fake.commands
    assert create[1:3] == ["-m", "venv"]
    assert install[-5:] == [
        "anyio==4.4.0",
        "trio==0.26.2",
        "hypothesis>=6.100",
        "itsdangerous>=2.0",
        "starlette==0.38.2",
    ]
    assert install[1:4] == ["-m", "pip", "install"]
    root = Path(_venvs.__file__).resolve().parents[2]
    assert own[-3:] == ["--no-deps", "-e", str(root)]
    assert (
        lines[1] == "bisect: installing starlette 0.38.2 (anyio 4.4.0, trio 0.26.2) ..."
    )
    assert lines[2] == f"bisect: installing asgifuzz from {root} (editable) ..."
    assert lines[-1].startswith(f"bisect: {venv.name} ready in ")
    # a second use reuses it, without a command or a line
    assert cache.ensure("starlette", "0.38.2") == venv
    assert len(fake.commands) == 3
    assert len(lines) == 4


def test_cache_builds_a_venv_with_extras_in_its_own_folder(tmp_path: Path) -> None:
    fake = FakeBuilder()
    cache = VenvCache(tmp_path, log=lambda _: None, run=fake, installer="pip")
    plain = cache.ensure("starlette", "0.38.2")
    servers = cache.ensure("starlette", "0.38.2", ["uvicorn>=0.30", "Hypercorn[trio]"])
    assert servers.name == plain.name + "+uvicorn+hypercorn"
    assert fake.commands[4][-3:] == [
        "uvicorn>=0.30",
        "Hypercorn[trio]",
        "starlette==0.38.2",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [plain.name, servers.name]
    assert (
        cache.ensure("starlette", "0.38.2", ["uvicorn>=0.30", "Hypercorn[trio]"])
        == servers
    )
    assert len(fake.commands) == 6


def test_cache_uses_uv_when_asked(tmp_path: Path) -> None:
    fake = FakeBuilder()
    VenvCache(tmp_path, log=lambda _: None, run=fake, installer="uv").ensure(
        "starlette", "1.3.0"
    )
    create, install, _ = fake.commands
    assert create[:2] == ["uv", "venv"]
    assert install[:3] == ["uv", "pip", "install"]
    assert "--python" in install


def test_cache_auto_picks_uv_from_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: "/opt/bin/uv")
    assert VenvCache("x")._uv == "/opt/bin/uv"
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert VenvCache("x")._uv is None


def test_a_failed_build_leaves_nothing_reusable(tmp_path: Path) -> None:
    fake = FakeBuilder(fail_at="starlette==0.38.2")
    cache = VenvCache(tmp_path, log=lambda _: None, run=fake, installer="pip")
    with pytest.raises(VenvBuildError, match=r"starlette 0.38.2 failed: `.*` exited 1"):
        cache.ensure("starlette", "0.38.2")
    assert list(tmp_path.iterdir()) == []  # the half-built venv is gone
    fake.fail_at = None
    cache.ensure("starlette", "0.38.2")
    assert len(fake.commands) == 2 + 3  # built again from scratch


def test_a_venv_without_its_marker_or_with_other_pins_is_rebuilt(
    tmp_path: Path,
) -> None:
    fake = FakeBuilder()
    cache = VenvCache(tmp_path, log=lambda _: None, run=fake, installer="pip")
    venv = cache.path("starlette", "0.38.2")
    (venv / "bin").mkdir(parents=True)  # as if copied in by hand, no marker
    cache.ensure("starlette", "0.38.2")
    marker = venv / "asgifuzz-venv.json"
    assert json.loads(marker.read_text())["pins"][0] == "anyio==4.4.0"
    marker.write_text(json.dumps({"pins": ["anyio==4.3.0"]}))  # an older era table
    cache.ensure("starlette", "0.38.2")
    assert len(fake.commands) == 6
    assert [p.name for p in tmp_path.iterdir()] == [venv.name]


def test_a_venv_built_meanwhile_by_another_process_is_used(tmp_path: Path) -> None:
    cache = VenvCache(tmp_path, log=lambda _: None, installer="pip")
    final = cache.path("starlette", "0.38.2")
    fake = FakeBuilder()

    def run(cmd: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        if "-e" in cmd:  # the other process finishes first
            other = VenvCache(tmp_path, log=lambda _: None, run=FakeBuilder())
            other.ensure("starlette", "0.38.2")
            (final / "theirs").touch()
        return fake(cmd, cwd)

    cache._run = run
    assert cache.ensure("starlette", "0.38.2") == final
    assert (final / "theirs").exists()
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_source_root_only_in_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = Path(_venvs.__file__).resolve().parents[2]
    assert _venvs._source_root() == here
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    monkeypatch.setattr(
        _venvs, "__file__", str(tmp_path / "asgifuzz" / "_releases" / "venvs.py")
    )
    assert _venvs._source_root() is None


def test_run_command_runs_without_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    code = "import os, sys; print(os.environ.get('PYTHONPATH'), sys.argv[1])"
    proc = _venvs._run_command([sys.executable, "-c", code, "x"], None)
    assert (proc.returncode, proc.stdout) == (0, "None x\n")


def test_run_command_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(cmd, 1800)

    monkeypatch.setattr(subprocess, "run", run)
    proc = _venvs._run_command(["sleep", "9999"], None)
    assert (proc.returncode, proc.stderr) == (124, "timed out after 1800s")


def test_an_installed_asgifuzz_is_copied_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_venvs, "_source_root", lambda: None)
    fake = FakeBuilder()
    lines: list[str] = []
    VenvCache(tmp_path, log=lines.append, run=fake, installer="pip").ensure(
        "somepkg", "1.0"
    )
    own = fake.commands[-1]
    assert own[1] == "-c"
    assert "copytree" in own[2]
    assert own[3] == str(Path(_venvs.__file__).resolve().parents[1])
    assert lines[1] == "bisect: installing somepkg 1.0 (no pins) ..."
    assert "(copied)" in lines[2]


def test_the_cache_folder_comes_from_asgifuzz_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASGIFUZZ_CACHE", str(tmp_path))
    assert VenvCache().root == tmp_path
    assert VenvCache(tmp_path / "other").root == tmp_path / "other"
    monkeypatch.delenv("ASGIFUZZ_CACHE")
    assert VenvCache().root == Path.home() / ".cache" / "asgifuzz" / "venvs"


@pytest.mark.parametrize(
    ("said", "outcome"),
    [
        ((0, "passes"), ("passes", "")),
        ((0, "passing now (fixed?)"), ("passes", "")),
        ((1, "fails"), ("fails", "")),
        ((1, "still failing (I5:never)"), ("fails", "")),
        (
            (1, "failing differently (I7:asyncgen; was I5:never)"),
            ("other", "(I7:asyncgen; was I5:never)"),
        ),
    ],
)
def test_replay_maps_exit_status_and_verdict(
    tmp_path: Path, said: tuple[int, str], outcome: tuple[str, str]
) -> None:
    fake = FakeBuilder(replay=said)
    cache = VenvCache(tmp_path, log=lambda _: None, run=fake, installer="pip")
    assert cache.replay(CASE, "starlette", "0.38.3", "trio") == outcome
    replay = fake.commands[-1]
    assert replay[1:] == ["-m", "asgifuzz", "replay", str(CASE), "--backend", "trio"]
    assert replay[0] == str(cache.path("starlette", "0.38.3") / "bin" / "python")


@pytest.mark.parametrize(
    "said",
    [
        (2, ""),  # bad input for that release
        (3, ""),
        (1, ""),  # a traceback also exits 1, but says no verdict
        (1, "flaky: failed 1 of 2 runs"),  # not with one run; not a verdict here
    ],
)
def test_replay_without_a_verdict_is_an_error(
    tmp_path: Path, said: tuple[int, str]
) -> None:
    fake = FakeBuilder(replay=said)
    cache = VenvCache(tmp_path, log=lambda _: None, run=fake, installer="pip")
    with pytest.raises(ReplayError, match=f"starlette 0.38.3 exited {said[0]}: boom"):
        cache.replay(CASE, "starlette", "0.38.3", "both")


@pytest.mark.parametrize(
    ("entry", "keys", "outcome"),
    [
        (True, [], "passes"),
        (True, ["I5:never"], "fails"),
        (True, ["I7:asyncgen"], "other"),
        (False, [], "passes"),
        (False, ["I7:asyncgen"], "fails"),
    ],
)
def test_replay_reads_what_asgifuzz_replay_says(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    entry: bool,
    keys: list[str],
    outcome: ReplayStatus,
) -> None:
    # the contract with asgifuzz._corpus.replay: its exit status and first line
    path = tmp_path / "case.json"
    data = json.loads(CASE.read_text())
    path.write_text(json.dumps(data if entry else data["case"]))

    def judge(case: Case, backends: tuple[str, ...]) -> Verdict:
        found = [Violation(k[:2], "made up", k[3:]) for k in keys]
        return Verdict(case, violations={"trio": found})

    monkeypatch.setattr(_replay, "judge", judge)
    args = argparse.Namespace(paths=[path], runs=1, trace=False, mermaid=None)
    code = _replay.main(args, ("trio",))
    said = subprocess.CompletedProcess([], code, capsys.readouterr().out, "")
    cache = VenvCache(tmp_path, log=lambda _: None, run=FakeBuilder(), installer="pip")
    cache._run = lambda cmd, cwd: said if "replay" in cmd else FakeBuilder()(cmd, cwd)
    assert cache.replay(path, "starlette", "0.38.3", "trio")[0] == outcome


def test_the_default_runner_replays_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []

    def replay(
        self: VenvCache, path: Path, package: str, version: str, backend: str
    ) -> tuple[ReplayStatus, str]:
        assert self.root == tmp_path
        calls.append((version, backend))
        return ("fails", "") if version == "0.38.3" else ("passes", "")

    monkeypatch.setattr(VenvCache, "replay", replay)
    result = bisect(
        CASE,
        lo="0.38.2",
        hi="0.38.4",
        backend="asyncio",
        cache=tmp_path,
        list_releases=lambda _: RELEASES,
        log=lambda _: None,
    )
    assert calls == [
        ("0.38.2", "asyncio"),
        ("0.38.3", "asyncio"),
        ("0.38.4", "asyncio"),
    ]
    assert result.ranges == (FailingRange("0.38.3", "0.38.3", "0.38.4"),)


# the command line


def parse(argv: list[str]) -> argparse.Namespace:
    return parser("bisect").parse_args(argv)


def test_add_parser_defaults() -> None:
    args = parse(["bisect", str(CASE)])
    assert (args.path, args.package, args.from_, args.to) == (
        CASE,
        "starlette",
        None,
        None,
    )
    assert (args.backend, args.cache, args.json) == ("both", None, None)


def test_main_prints_the_result_and_exits_0(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_bisect, "releases", lambda _: RELEASES)
    monkeypatch.setattr(
        VenvCache,
        "replay",
        lambda self, p, pkg, ver, b: (
            "fails" if v(ver) >= (0, 38, 3) else "passes",
            "",
        ),
    )
    out = tmp_path / "bisect.json"
    argv = ["bisect", str(CASE), "--from", "0.38.0", "--to", "0.39.0"]
    args = parse([*argv, "--cache", str(tmp_path), "--json", str(out)])
    assert _bisect_cli.main(args) == 0
    captured = capsys.readouterr()
    assert "fails from 0.38.3 to 0.39.0 (the upper bound); not fixed" in captured.out
    assert "bisect: probe 1: starlette 0.38.0 passes" in captured.err
    assert json.loads(out.read_text())["ranges"][0]["first_failing"] == "0.38.3"
    assert _bisect_cli.main(parse(argv)) == 0  # without --json
    assert "fails from 0.38.3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "0.39.0", "--to", "0.38.0"], "--from 0.39.0 is after --to 0.38.0"),
        (["--from", "9.9.9"], "--from 9.9.9: starlette has no such release"),
        (["--package=-x"], "'-x' is not a package name"),
    ],
)
def test_main_bad_input_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(
        _venvs, "_pip_index_versions", lambda _: PIP_OUTPUT
    )  # no network
    assert cli(["bisect", str(CASE), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"asgifuzz: error: {message}")
    assert err.count("\n") == 1


def test_main_unreadable_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["bisect", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: cannot read it" in capsys.readouterr().err


def test_a_cached_venv_of_another_asgifuzz_gets_this_one_again(tmp_path: Path) -> None:
    # A venv made from a checkout since deleted (a worktree, a CI clone) would
    # replay with no asgifuzz at all: the cache installs this one again.
    fake = FakeBuilder()
    lines: list[str] = []
    cache = VenvCache(tmp_path, log=lines.append, run=fake, installer="pip")
    venv = cache.ensure("starlette", "0.38.2")
    marker = venv / "asgifuzz-venv.json"
    root = str(Path(_venvs.__file__).resolve().parents[2])
    assert json.loads(marker.read_text())["asgifuzz"] == root
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps(data | {"asgifuzz": "/gone/checkout"}))
    assert cache.ensure("starlette", "0.38.2") == venv
    assert len(fake.commands) == 4  # only asgifuzz again, not the venv
    assert fake.commands[-1][-3:] == ["--no-deps", "-e", root]
    assert lines[-1] == (
        f"bisect: {venv.name}: installing asgifuzz from {root} (editable) ..."
    )
    assert json.loads(marker.read_text())["asgifuzz"] == root
    assert cache.ensure("starlette", "0.38.2") == venv  # current again: nothing
    assert len(fake.commands) == 4
    # An old marker without the field, and an install that fails.
    marker.write_text(json.dumps(data | {"asgifuzz": None}))
    fake.fail_at = "-e"
    with pytest.raises(VenvBuildError, match=r"installing asgifuzz into .* exited 1"):
        cache.ensure("starlette", "0.38.2")
