"""Standalone reproducers of websocket cases on real servers (``asgifuzz repro
--server`` of a websocket case): each script is written, then run in its own
process, which serves the app with the real server in a thread and plays the
case's client with a real WebSocket client (wsproto), bounded by a timeout."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import pytest

from asgifuzz._cli.main import main
from asgifuzz._corpus.entries import load_entry
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._releases.venvs import VenvCache, venv_python
from asgifuzz._repro.live import LIVE_SERVERS, render_live
from asgifuzz._targets.specs import allow_middleware, load_middleware, scoped
from asgifuzz.models import Case, Layer, Stack
from asgifuzz.models._websocket import Session, Step, WsEndpoint

pytest.importorskip("uvicorn", reason="the servers extra is not installed")
pytest.importorskip("hypercorn", reason="the servers extra is not installed")
pytest.importorskip("wsproto", reason="the servers extra is not installed")

TESTS = Path(__file__).parents[1]
CORPUS = TESTS.parent / "corpus"
REDIRECT = load_entry(CORPUS / "https-redirect-sends-http-response-on-websocket.json")
INSTALLED = version("starlette")
PLANTED = TESTS / "websocket"
SPECS = {
    f"{n}{fixed}": f"ws_planted:{n}{fixed}"
    for n in ("DropsThirdFrame", "SwallowsCloseCode")
    for fixed in ("", "Fixed")
}


def _run(script: str, python: str, folder: Path) -> subprocess.CompletedProcess[str]:
    path = folder / "repro.py"
    path.write_text(script)
    # No asgifuzz on the path: Starlette, the server, wsproto (and the planted
    # middleware) only.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PLANTED)}
    return subprocess.run(
        [python, str(path)], capture_output=True, text=True, timeout=90, env=env
    )


@pytest.mark.parametrize("server", LIVE_SERVERS)
def test_the_redirect_entry_shows_where_the_corpus_says(
    server: str, tmp_path: Path
) -> None:
    script = render_live(REDIRECT.case, REDIRECT.key, server, title=REDIRECT.title)
    done = _run(script, sys.executable, tmp_path)
    affected = REDIRECT.affects(INSTALLED)
    assert done.returncode == int(affected), done.stdout + done.stderr
    assert f"Starlette {INSTALLED}, {server} " in done.stdout
    # What the real client saw: the server's 500, or the redirect (a denial).
    assert ("status=500" if affected else "status=307") in done.stdout, done.stdout


def test_the_redirect_script_on_the_other_side_of_the_range(tmp_path: Path) -> None:
    other = "0.37.0" if REDIRECT.affects(INSTALLED) else "0.36.3"
    try:
        venv = VenvCache(log=lambda _: None).ensure("starlette", other, LIVE_SERVERS)
    except AsgiFuzzError as exc:
        pytest.skip(f"no venv for Starlette {other}: {exc}")
    script = render_live(REDIRECT.case, REDIRECT.key, "uvicorn", upstream="https://x/1")
    done = _run(script, str(venv_python(venv)), tmp_path)
    assert done.returncode == int(REDIRECT.affects(other)), done.stdout + done.stderr
    assert "upstream: https://x/1" in done.stdout


#: The client sends frame i once it has seen i of the endpoint's frames, then
#: closes with 4000 (as tests/repro/test_repro_scopes.py's).
STEPS = (
    *(Step("text", f"frame {i}", after=i) for i in range(4)),
    Step("close", code=4000, reason="bye", after=4),
)
BUGS = {
    "DropsThirdFrame": (Session(steps=STEPS), "W2:client"),
    "SwallowsCloseCode": (
        Session(endpoint=WsEndpoint("broadcast", count=2, code=4001, reason="done")),
        "W3:server",
    ),
}


@pytest.mark.parametrize("server", LIVE_SERVERS)
@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_planted_bug_shows_on_the_real_server_and_its_fix_passes(
    name: str, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLANTED))
    session, key = BUGS[name]
    with scoped(({}, {})):
        for n, spec in SPECS.items():
            allow_middleware(load_middleware(f"{n}={spec}"))
        for kind, exits in ((name, 1), (f"{name}Fixed", 0)):
            case = Case(
                scope="websocket",
                stack=Stack((Layer(f"user.{kind}"),)),
                websocket=session,
            )
            script = render_live(case, key, server, specs=SPECS)
            assert f"from ws_planted import {kind}" in script
            done = _run(script, sys.executable, tmp_path)
            assert done.returncode == exits, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("case", "key", "says"),
    [
        (REDIRECT.case, "I7:asyncgen", "no real-server check for websocket key"),
        (
            replace(REDIRECT.case, stack=Stack((Layer("user.Mine"),))),
            "W2:client",
            r"field 'stack.layers\[0\].kind'",
        ),
        (replace(REDIRECT.case, app="app"), "W4:KeyError", "field 'app'"),
    ],
)
def test_what_a_websocket_script_cannot_do_is_said(
    case: Case, key: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        render_live(case, key, "uvicorn", app_spec="userapp:app")


def test_the_command_writes_the_websocket_script(
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry = CORPUS / "https-redirect-sends-http-response-on-websocket.json"
    assert main(["repro", str(entry), "--server", "hypercorn"]) == 0
    script = capsys.readouterr().out
    assert "from wsproto import ConnectionType, WSConnection, events" in script
    assert "serve_hypercorn(watched(app)" in script
    compile(script, "repro.py", "exec")
