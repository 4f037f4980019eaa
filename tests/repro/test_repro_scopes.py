"""Standalone reproducers of websocket cases, lifespan sessions and the
extension endpoints: a planted bug's script exits 1, its fixed twin's 0, and
each script agrees with asgifuzz on its case; what a script cannot hold is
refused, naming the field."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from asgifuzz._cli.main import main
from asgifuzz._oracles.verdict import judge
from asgifuzz._repro.live import render_live
from asgifuzz._repro.script import render_repro
from asgifuzz._targets.specs import allow_middleware, load_middleware, scoped
from asgifuzz.models import (
    Case,
    Client,
    Endpoint,
    Layer,
    Lifespan,
    Request,
    Server,
    Stack,
    case_to_data,
)
from asgifuzz.models._websocket import Session, Step, WsEndpoint

TESTS = Path(__file__).parents[1]
ROOT = TESTS.parent
#: Where the planted bugs live: the scripts import them from there.
PLANTED = (TESTS / "websocket", TESTS / "targets")
WS_PLANTED = ("DropsThirdFrame", "SwallowsCloseCode", "RaisesOnDisconnect")
SPECS = {
    **{n: f"ws_planted:{n}" for n in WS_PLANTED},
    **{f"{n}Fixed": f"ws_planted:{n}Fixed" for n in WS_PLANTED},
    "StartupReporter": "lifespan_code:StartupReporter",
    "StartupReporterFixed": "lifespan_code:StartupReporterFixed",
}
ALLOWED_IMPORTS = {"starlette", "anyio", "trio"} | set(sys.stdlib_module_names)


@pytest.fixture(autouse=True)
def _planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The planted middleware, allowed by name in a registry of this test's."""
    for folder in PLANTED:
        monkeypatch.syspath_prepend(str(folder))
    with scoped(({}, {})):
        for name, spec in SPECS.items():
            allow_middleware(load_middleware(f"{name}={spec}"))
        yield


def run_script(
    tmp_path: Path, source: str, backend: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "repro.py"
    script.write_text(source)
    path = os.pathsep.join([str(ROOT), *map(str, PLANTED)])
    return subprocess.run(
        [sys.executable, str(script), backend],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )


def _exits(case: Case, key: str, backend: str, tmp_path: Path) -> int:
    done = run_script(tmp_path, render_repro(case, key, specs=SPECS), backend)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode


#: The client sends frame i once it has seen i of the endpoint's frames, then a
#: bytes frame, then closes with 4000.
STEPS = (
    *(Step("text", f"frame {i}", after=i) for i in range(4)),
    Step("bytes", b"\x00\x01", after=3),
    Step("close", code=4000, reason="bye", after=4),
)


ECHO = WsEndpoint()


def ws_case(*kinds: str, endpoint: WsEndpoint = ECHO, **kw: object) -> Case:
    return Case(
        scope="websocket",
        stack=Stack(tuple(Layer(k) for k in kinds)),
        websocket=Session(endpoint=endpoint, steps=kw.pop("steps", STEPS)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


#: Per planted websocket bug: a case that shows it, and the key it shows.
WS_BUGS = {
    "DropsThirdFrame": (ws_case("user.DropsThirdFrame"), "W2:client"),
    "SwallowsCloseCode": (
        ws_case(
            "user.SwallowsCloseCode",
            endpoint=WsEndpoint("broadcast", count=2, code=4001, reason="done"),
        ),
        "W3:server",
    ),
    "RaisesOnDisconnect": (ws_case("user.RaisesOnDisconnect"), "W4:KeyError"),
}


@pytest.mark.parametrize("name", WS_PLANTED)
def test_a_planted_websocket_bug_reproduces_and_its_fix_passes(
    name: str, backend: str, tmp_path: Path
) -> None:
    case, key = WS_BUGS[name]
    assert key in {v.key for v in judge(case, (backend,)).violations[backend]}
    assert _exits(case, key, backend, tmp_path) == 1
    fixed = Layer(f"user.{name}Fixed")
    assert _exits(replace(case, stack=Stack((fixed,))), key, backend, tmp_path) == 0


#: Built-in websocket stacks and endpoints, on each profile.
WS_CASES = [
    ws_case(
        "ws.rewrite",
        "ws.read_first",
        endpoint=WsEndpoint("echo", subprotocol="chat"),
        server=Server("hypercorn"),
    ),
    ws_case("ws.auth", "bhm.add_header", server=Server("strict"), seed=3),
    ws_case("asgi.passthrough", "starlette.cors", endpoint=WsEndpoint("deny")),
    ws_case("ws.passthrough", endpoint=WsEndpoint("reject", code=4003)),
    ws_case(
        "ws.passthrough", endpoint=WsEndpoint("raise_after"), server=Server("hypercorn")
    ),
    ws_case("starlette.sessions", endpoint=WsEndpoint("raise_before")),
    ws_case(
        "ws.passthrough",
        endpoint=WsEndpoint("read_all"),
        steps=(Step("drop", after=0),),
    ),
    ws_case(
        "ws.passthrough",
        endpoint=WsEndpoint("close", code=1001, reason="x" * 200),
        server=Server("strict"),
    ),
    ws_case(steps=(Step("close", after=-1, code=4000),), server=Server("hypercorn")),
]
WS_KEYS = (
    "W1:reason",
    "W2:client",
    "W2:endpoint",
    "W3:server",
    "W3:endpoint",
    "W4:hang",
    "W4:ModelError",
)


@pytest.mark.parametrize("index", range(len(WS_CASES)))
def test_websocket_script_agrees_with_asgifuzz(
    index: int, backend: str, tmp_path: Path
) -> None:
    case = WS_CASES[index]
    reported = {v.key for v in judge(case, (backend,)).violations[backend]}
    for key in sorted(reported | set(WS_KEYS)):
        assert _exits(case, key, backend, tmp_path) == int(key in reported), (
            f"{key}: asgifuzz reports {sorted(reported)}"
        )


def session(*kinds: str, **kw: object) -> Case:
    return Case(
        stack=Stack(tuple(Layer(k) for k in kinds)),
        lifespan=Lifespan(**kw),  # type: ignore[arg-type]
        request=Request(method="POST", body=(b"ab",)),
    )


def test_the_planted_lifespan_bug_reproduces_and_its_fix_passes(
    backend: str, tmp_path: Path
) -> None:
    case = session("user.StartupReporter", startup="fail")
    assert "L2:complete" in {v.key for v in judge(case, (backend,)).violations[backend]}
    assert _exits(case, "L2:complete", backend, tmp_path) == 1
    fixed = session("user.StartupReporterFixed", startup="fail")
    assert _exits(fixed, "L2:complete", backend, tmp_path) == 0


SESSIONS = [
    session("lifespan.wrap", state=("db", "cache")),
    session("lifespan.handle", "bhm.passthrough", app="raw", state=("db",)),
    session("starlette.gzip", "lifespan.handle", app="unsupported"),
    session("lifespan.wrap", "asgi.read_body", app="raw", startup="raise"),
    session("asgi.passthrough", app="unsupported", startup="raise"),
    session("lifespan.wrap", startup="hang", shutdown="fail"),
    session("asgi.short_circuit", app="raw", shutdown="raise"),
]
L_KEYS = (
    "L1:changed",
    "L1:lost",
    "L1:invented",
    "L2:complete",
    "L2:hidden",
    "L3:lost",
    "L3:changed",
    "L4:failed",
    "L4:hang",
)


@pytest.mark.parametrize("index", range(len(SESSIONS)))
def test_lifespan_script_agrees_with_asgifuzz(
    index: int, backend: str, tmp_path: Path
) -> None:
    case = SESSIONS[index]
    reported = {v.key for v in judge(case, (backend,)).violations[backend]}
    keys = {k for k in reported if k.startswith("L")} | set(L_KEYS[index::3])
    for key in sorted(keys):
        assert _exits(case, key, backend, tmp_path) == int(key in reported), (
            f"{key}: asgifuzz reports {sorted(reported)}"
        )


TRAILERS = Server("hypercorn", http_version="2")


@pytest.mark.parametrize(
    ("case", "key"),
    [
        (Case(endpoint=Endpoint("trailers"), server=TRAILERS), "X1:lost"),
        (
            Case(
                stack=Stack((Layer("bhm.passthrough"),)),
                endpoint=Endpoint("trailers"),
                server=TRAILERS,
            ),
            "X1:lost",
        ),
        (Case(endpoint=Endpoint("pathsend"), server=Server("granian")), "X2"),
        (
            Case(
                stack=Stack((Layer("asgi.add_header"),)),
                endpoint=Endpoint("pathsend", size=300),
                server=Server("granian"),
            ),
            "X2",
        ),
        (Case(endpoint=Endpoint("early_hint"), server=TRAILERS), "I1:RuntimeError"),
        (
            Case(
                stack=Stack((Layer("asgi.transform_body"),)),
                endpoint=Endpoint("early_hint"),
                server=Server("strict", http_version="2"),
            ),
            "I1:RuntimeError",
        ),
    ],
    ids=[
        "trailers",
        "bhm-drops-trailers",
        "pathsend",
        "pathsend-sized",
        "early-hint",
        "early-hint-strict",
    ],
)
def test_extension_script_agrees_with_asgifuzz(
    case: Case, key: str, backend: str, tmp_path: Path
) -> None:
    reported = {v.key for v in judge(case, (backend,)).violations[backend]}
    assert _exits(case, key, backend, tmp_path) == int(key in reported), sorted(
        reported
    )


def _sources() -> list[str]:
    cases = [*(c for c, _ in WS_BUGS.values()), *WS_CASES]
    sources = [render_repro(c, k, specs=SPECS) for c in cases for k in WS_KEYS[:6]]
    sources += [render_repro(c, "I7:asyncgen") for c in WS_CASES]
    sources += [render_repro(c, k) for c in SESSIONS for k in L_KEYS[::2]]
    sources.append(
        render_repro(session("user.StartupReporter"), "L2:complete", specs=SPECS)
    )
    return sources


def test_scripts_compile_and_pass_ruff(tmp_path: Path) -> None:
    paths = []
    for i, source in enumerate(_sources()):
        compile(source, f"repro{i}.py", "exec")
        paths.append(tmp_path / f"repro{i}.py")
        paths[-1].write_text(source)
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed here")
    rules = "E,W,F,I,UP,B,C4,SIM,PIE,RET,PT,ASYNC,RUF"  # the project's, less T20
    argv = [ruff, "check", "--isolated", "--select", rules, "--ignore", "E501"]
    argv += ["--target-version", "py311", *map(str, paths)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scripts_import_only_starlette_anyio_trio_and_the_planted_module() -> None:
    for source in _sources():
        tree = ast.parse(source)
        tops = {
            (node.module or "").partition(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        tops |= {
            alias.name.partition(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert tops <= ALLOWED_IMPORTS | {"ws_planted", "lifespan_code"}, tops


@pytest.mark.parametrize(
    ("case", "key", "specs", "message"),
    [
        (ws_case(app="shop"), "W4:KeyError", {}, "field 'app' is 'shop'"),
        (ws_case("user.Mine"), "W2:client", {}, r"stack.layers\[0\].kind.*'none'"),
        (
            ws_case("user.Mine"),
            "W2:client",
            {"Mine": "m:Mine(1)"},
            "no constructor arguments",
        ),
        (
            Case(stack=Stack((Layer("user.Mine"),))),
            "I3",
            SPECS,
            "an HTTP case cannot hold",
        ),
        (ws_case(), "W9", {}, "supported keys: W1:<tag>"),
        (ws_case(), "I8:status", {}, "no standalone check for websocket key"),
        (session(), "I1:RuntimeError", {}, "supported keys: L1:"),
        (
            Case(lifespan=Lifespan(), client=Client("receive")),
            "L2:complete",
            {},
            "field 'client.disconnect'",
        ),
        (
            Case(endpoint=Endpoint("trailers")),
            "X1:lost",
            {},
            "cannot show on this case",
        ),
        (Case(endpoint=Endpoint("pathsend")), "X3:other", {}, "no standalone check"),
        (
            replace(ws_case(), lifespan=Lifespan()),
            "L2:complete",
            {},
            "field 'lifespan'",
        ),
    ],
)
def test_what_a_script_cannot_hold_is_refused(
    case: Case, key: str, specs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_repro(case, key, specs=specs)


def test_a_real_server_script_refuses_other_scopes() -> None:
    with pytest.raises(ValueError, match="no real-server check for websocket key"):
        render_live(ws_case(), "I3", "uvicorn")
    with pytest.raises(ValueError, match="field 'lifespan'"):
        render_live(session(), "I3", "uvicorn")


def _entry(
    tmp_path: Path, case: Case, key: str, targets: dict[str, dict[str, str]]
) -> Path:
    path = tmp_path / "entry.json"
    data = {
        "format": 1,
        "key": key,
        "title": "a planted bug",
        "status": "new",
        "affected": [],
        "backends": ["asyncio"],
        "case": case_to_data(case),
        **({"targets": targets} if targets else {}),
    }
    path.write_text(json.dumps(data))
    return path


def test_the_cli_writes_a_planted_bugs_script_importing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case, key = WS_BUGS["DropsThirdFrame"]
    spec = {"middleware": {"DropsThirdFrame": SPECS["DropsThirdFrame"]}}
    assert main(["repro", str(_entry(tmp_path, case, key, spec))]) == 0
    out, err = capsys.readouterr()
    assert "from ws_planted import DropsThirdFrame" in out
    assert (
        "imports it by the spec the entry records (ws_planted:DropsThirdFrame)" in err
    )
    assert run_script(tmp_path, out, "asyncio").returncode == 1


def test_the_cli_refuses_a_websocket_case_of_a_users_layer_with_no_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case, key = WS_BUGS["DropsThirdFrame"]
    assert main(["repro", str(_entry(tmp_path, case, key, {}))]) == 2
    assert "field 'stack.layers[0].kind'" in capsys.readouterr().err


APP_MODULE = """\
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute


async def index(request):
    return PlainTextResponse("ok")


async def closes(websocket):
    # As FastAPI 0.165's validation handler does: a list for a reason.
    await websocket.close(code=1008, reason=REASON)


app = Starlette(routes=[Route("/", index), WebSocketRoute("/ws", closes)])
"""


@pytest.mark.parametrize(("reason", "exits"), [("[{'msg': 'bad'}]", 1), ("'bad'", 0)])
def test_a_websocket_case_of_a_users_app_imports_it(
    reason: str, exits: int, tmp_path: Path
) -> None:
    (tmp_path / "userapp.py").write_text(APP_MODULE.replace("REASON", reason))
    case = Case(app="app", scope="websocket")
    source = render_repro(case, "W1:reason", app_spec="userapp:app")
    assert "from userapp import app as user_app" in source
    assert "and the code it imports\nfrom userapp, your own." in source
    done = run_script(tmp_path, source, "asyncio")  # beside userapp.py
    assert done.returncode == exits, done.stdout + done.stderr
    with pytest.raises(ValueError, match=r"field 'app'.*W4 judges"):
        render_repro(case, "W4:KeyError", app_spec="userapp:app")
