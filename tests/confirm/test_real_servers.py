"""``asgifuzz confirm`` on real servers: each test starts real uvicorn or
hypercorn processes on loopback and stops them by their pid.

The old Starlette release is served from a cached release venv (built on first
use, as bisect's are: ``$ASGIFUZZ_CACHE``); the tests that need it are skipped,
with the reason, where it cannot be built.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from asgifuzz._cli.main import main
from asgifuzz._confirm import process
from asgifuzz._confirm.confirm import confirm_on
from asgifuzz._confirm.judge import CONFIRMED, NOT_CONFIRMABLE, NOT_CONFIRMED
from asgifuzz._confirm.process import ServerStartError, running, stop
from asgifuzz._confirm.serve import SERVERS, missing
from asgifuzz._corpus.entries import load_entry
from asgifuzz._corpus.replay import load_target
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._releases.venvs import VenvCache, venv_python
from asgifuzz.models import Stack

pytest.importorskip("uvicorn", reason="the servers extra is not installed")
pytest.importorskip("hypercorn", reason="the servers extra is not installed")

CORPUS = Path(__file__).parents[2] / "corpus"
HANG = CORPUS / "is-disconnected-drops-body-hang.json"
LOOKS_COMPLETE = CORPUS / "bhm-failed-stream-looks-complete.json"
#: The release before the looks-complete regression that the test serves.
BEFORE = "0.45.0"
#: Wall-clock seconds the client waits before it calls a response hung (what
#: a hang costs; a run whose response is expected waits up to `PATIENT`, so that
#: a loaded machine does not make a slow response look hung).
BOUND = 1.0
PATIENT = 10.0
#: The Starlette this suite runs on (1.10.0; 0.27.0 in the compatibility run).
INSTALLED = version("starlette")


#: The servers the release venv holds (uvicorn and hypercorn: its cached folder).
OLD_SERVERS = ("uvicorn", "hypercorn")
#: Every server, skipped (saying why) where it is not installed.
EVERY_SERVER = [
    pytest.param(s, marks=pytest.mark.skipif(bool(missing(s)), reason=missing(s)))
    for s in SERVERS
]


def _affected(path: Path, version: str) -> bool:
    return load_entry(path).affects(version)


@pytest.fixture(scope="module")
def old_python() -> str:
    """The Python of a venv with Starlette `BEFORE` and the servers."""
    try:
        venv = VenvCache(log=lambda _: None).ensure("starlette", BEFORE, OLD_SERVERS)
    except AsgiFuzzError as exc:
        pytest.skip(f"no venv for Starlette {BEFORE}: {exc}")
    return str(venv_python(venv))


@pytest.mark.parametrize("server", EVERY_SERVER)
def test_the_is_disconnected_hang_is_confirmed(server: str) -> None:
    target = load_target(HANG)
    assert target.key is not None
    assert _affected(HANG, INSTALLED)
    found = confirm_on(server, target.case, target.key, bound=BOUND)
    assert (found.status, found.starlette) == (CONFIRMED, INSTALLED), found.line()
    # The same request without the middleware that polls: a response comes.
    plain = dataclasses.replace(target.case, stack=Stack())
    control = confirm_on(server, plain, target.key, bound=PATIENT)
    assert control.status == NOT_CONFIRMED, control.line()
    assert "framing complete" in control.detail


def test_the_is_disconnected_hang_is_confirmed_on_every_release(
    old_python: str,
) -> None:
    # The corpus finds it on every sampled release from 0.15.0 (the oldest that
    # asgifuzz runs on): there is no release before it to be "not confirmed" on.
    assert _affected(HANG, BEFORE)
    target = load_target(HANG)
    assert target.key is not None
    found = confirm_on(
        "uvicorn", target.case, target.key, python=old_python, bound=BOUND
    )
    assert (found.status, found.starlette) == (CONFIRMED, BEFORE), found.line()


# (daphne confirms it too, but its run without the layers hangs: 10 s; the
# corpus' recorded verdicts hold it.)
@pytest.mark.parametrize("server", OLD_SERVERS)
def test_the_truncated_stream_that_looks_complete_is_confirmed(server: str) -> None:
    target = load_target(LOOKS_COMPLETE)
    assert target.key == "I8:complete+"
    found = confirm_on(server, target.case, target.key, bound=PATIENT)
    if not _affected(LOOKS_COMPLETE, INSTALLED):  # the compatibility run: 0.27.0
        assert found.status == NOT_CONFIRMED, found.line()
        return
    assert found.status == CONFIRMED, found.line()
    assert "framing complete; without them" in found.detail


@pytest.mark.skipif(bool(missing("granian")), reason=missing("granian"))
def test_granian_shows_the_truncated_stream_as_another_status() -> None:
    # granian defers the response head to the first body message: without the
    # middleware the endpoint's failure is a 500, with it a complete 200.
    target = load_target(LOOKS_COMPLETE)
    assert target.key is not None
    found = confirm_on("granian", target.case, target.key, bound=PATIENT)
    assert found.status == NOT_CONFIRMED, found.line()
    if _affected(LOOKS_COMPLETE, INSTALLED):
        assert "status 500" in found.detail
        assert "(first difference: status)" in found.detail


def test_the_truncated_stream_is_not_confirmed_before_the_regression(
    old_python: str,
) -> None:
    assert not _affected(LOOKS_COMPLETE, BEFORE)
    target = load_target(LOOKS_COMPLETE)
    assert target.key is not None
    found = confirm_on(
        "uvicorn", target.case, target.key, python=old_python, bound=PATIENT
    )
    assert (found.status, found.starlette) == (NOT_CONFIRMED, BEFORE), found.line()
    assert "first difference: none" in found.detail


def test_the_command_says_it_and_exits_by_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["confirm", str(HANG), "--timeout", str(BOUND)]) == 1
    assert f"{HANG}: I4:response\n  uvicorn " in capsys.readouterr().out
    leak = CORPUS / "bhm-body-stream-not-closed-trio.json"
    assert main(["confirm", str(leak), "--server", "all"]) == 0
    out = capsys.readouterr().out
    assert out.count(NOT_CONFIRMABLE) == len(SERVERS)
    bare = tmp_path / "case.json"
    bare.write_text(load_target(HANG).case.to_json())
    assert main(["confirm", str(bare)]) == 2
    assert "pass --key KEY" in capsys.readouterr().err


def test_the_command_writes_a_table(tmp_path: Path) -> None:
    leak = CORPUS / "bhm-body-stream-not-closed-trio.json"
    md = tmp_path / "confirm.md"
    argv = ["confirm", str(leak), str(HANG), "--markdown", str(md), "--timeout", "1"]
    assert main(argv) == 1
    lines = md.read_text().splitlines()
    assert lines[0] == f"On Starlette {INSTALLED}:"
    assert lines[2].startswith(
        f"| entry | key | affected (corpus) {INSTALLED} | uvicorn "
    )
    in_range = "yes" if _affected(leak, INSTALLED) else "no"
    assert lines[4:] == [
        f"| `bhm-body-stream-not-closed-trio` | I7:asyncgen | {in_range} | not confirmable |",
        "| `is-disconnected-drops-body-hang` | I4:response | yes | confirmed |",
    ]
    assert main(["confirm", str(leak), "--markdown", str(md)]) == 0
    assert md.read_text().splitlines()[2] == (
        "| entry | key | affected (corpus) | uvicorn |"
    )


def test_the_command_serves_an_old_release(
    old_python: str, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = ["--timeout", str(PATIENT)]
    assert main(["confirm", str(LOOKS_COMPLETE), "--starlette", BEFORE, *patient]) == 0
    assert f"(Starlette {BEFORE}): {NOT_CONFIRMED}" in capsys.readouterr().out
    assert main(["confirm", str(LOOKS_COMPLETE), "--python", old_python, *patient]) == 0


def test_every_server_process_is_stopped(tmp_path: Path) -> None:
    case = tmp_path / "case.json"
    case.write_text(load_target(HANG).case.to_json())
    with running("uvicorn", ["--case", str(case)], python=sys.executable) as live:
        os.kill(live.pid, 0)  # alive while in use
        assert live.log_text() == ""
    with pytest.raises(ProcessLookupError):
        os.kill(live.pid, 0)


def test_a_server_that_does_not_start_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    with (
        pytest.raises(ServerStartError, match=r"uvicorn did not start .*missing"),
        running("uvicorn", ["--case", missing], python=sys.executable),
    ):
        pass  # pragma: no cover (it does not start)


def test_a_server_that_does_not_answer_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho ready 9 uvicorn 0.0 1.0\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(process, "START_WAIT", 0.3)
    with (
        pytest.raises(ServerStartError, match="did not answer on port 9"),
        running("uvicorn", [], python=str(fake)),
    ):
        pass  # pragma: no cover (it does not answer)


def test_a_server_that_ignores_sigterm_is_killed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('armed', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"armed\n"
    monkeypatch.setattr(process, "STOP_WAIT", 0.2)
    stop(proc)
    assert proc.returncode == -9
