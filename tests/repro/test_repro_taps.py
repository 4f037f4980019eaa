"""The reproducers' checks of I7:task (a task still pending when the app
returned) and X3 (the HTTP extensions' messages where advertised, in order):
a planted bug's script exits 1, its fixed twin's 0, and on built-in cases each
script exits 1 exactly for the keys asgifuzz reports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import STARLETTE_PATHSENDS

from asgifuzz._corpus.entries import load_entry
from asgifuzz._oracles.verdict import judge
from asgifuzz._repro.script import render_repro
from asgifuzz._targets.specs import allow_middleware, load_middleware, scoped
from asgifuzz.models import Case, Endpoint, Layer, Server, Stack
from asgifuzz.models._websocket import Session, Step, WsEndpoint

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
PLANTED = ("LeavesTask", "SendsEarlyHint", "PadsPathsend")
SPECS = {
    f"{n}{fixed}": f"planted_taps:{n}{fixed}"
    for n in PLANTED
    for fixed in ("", "Fixed")
}
KEYS = ("I7:task", "X3:unadvertised", "X3:late", "X3:mixed")


@pytest.fixture(autouse=True)
def _planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The planted middleware, allowed by name in a registry of this test's."""
    monkeypatch.syspath_prepend(str(HERE))
    with scoped(({}, {})):
        for name, spec in SPECS.items():
            allow_middleware(load_middleware(f"{name}={spec}"))
        yield


def _exits(case: Case, key: str, backend: str, tmp_path: Path) -> int:
    script = tmp_path / "repro.py"
    script.write_text(render_repro(case, key, specs=SPECS))
    done = subprocess.run(
        [sys.executable, str(script), backend],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])},
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode


def _with(kind: str, case: Case) -> Case:
    return replace(case, stack=Stack((Layer(f"user.{kind}"),)))


WEBSOCKET = Case(scope="websocket", websocket=Session())
PATHSEND = Case(endpoint=Endpoint("pathsend"), server=Server("granian"))
#: Per planted bug: a case that shows it, its key, and the backend it shows on.
BUGS = [
    ("LeavesTask", Case(), "I7:task", "asyncio"),
    ("LeavesTask", WEBSOCKET, "I7:task", "asyncio"),
    ("SendsEarlyHint", Case(), "X3:unadvertised", "trio"),
    ("PadsPathsend", PATHSEND, "X3:mixed", "asyncio"),
]


@pytest.mark.parametrize(
    ("name", "case", "key", "backend"), BUGS, ids=[f"{b[0]}-{b[1].scope}" for b in BUGS]
)
def test_a_planted_bug_reproduces_and_its_fix_passes(
    name: str, case: Case, key: str, backend: str, tmp_path: Path
) -> None:
    planted = _with(name, case)
    # Before 0.38 FileResponse sends no pathsend: nothing to pad, on either side.
    shows = STARLETTE_PATHSENDS or name != "PadsPathsend"
    reported = {v.key for v in judge(planted, (backend,)).violations[backend]}
    assert (key in reported) == shows, sorted(reported)
    assert _exits(planted, key, backend, tmp_path) == int(shows)
    fixed = _with(f"{name}Fixed", case)
    assert key not in {v.key for v in judge(fixed, (backend,)).violations[backend]}
    assert _exits(fixed, key, backend, tmp_path) == 0


ITERATE = load_entry(ROOT / "corpus" / "websocket-iter-text-not-closed-trio.json").case
#: Built-in cases: the extension endpoints on the servers that advertise them
#: (or not), through layers that buffer or rewrite, and websocket sessions,
#: one of which leaves a task on asyncio (corpus entry J's).
CASES = [
    PATHSEND,
    replace(PATHSEND, stack=Stack((Layer("starlette.gzip"), Layer("bhm.passthrough")))),
    Case(endpoint=Endpoint("early_hint"), server=Server("hypercorn", http_version="2")),
    Case(
        stack=Stack((Layer("asgi.transform_body"),)),
        endpoint=Endpoint("early_hint"),
        server=Server("strict", http_version="2"),
    ),
    Case(endpoint=Endpoint("trailers"), server=Server("hypercorn", http_version="2")),
    Case(stack=Stack((Layer("bhm.background"),)), endpoint=Endpoint("plain")),
    ITERATE,
    replace(
        ITERATE,
        websocket=Session(
            endpoint=WsEndpoint("echo"), steps=(Step("text", "hi"), Step("drop"))
        ),
    ),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_the_scripts_agree_with_asgifuzz(
    index: int, backend: str, tmp_path: Path
) -> None:
    case = CASES[index]
    reported = {v.key for v in judge(case, (backend,)).violations[backend]}
    keys = [k for k in KEYS if case.scope == "http" or not k.startswith("X3")]
    for key in keys:
        assert _exits(case, key, backend, tmp_path) == int(key in reported), (
            f"{key}: asgifuzz reports {sorted(reported)}"
        )


def test_x3_on_a_websocket_case_is_refused() -> None:
    with pytest.raises(ValueError, match="field 'scope' is 'websocket': X3 judges"):
        render_repro(WEBSOCKET, "X3:mixed")


def test_the_scripts_pass_ruff(tmp_path: Path) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed here")
    sources = [render_repro(_with(n, c), k, specs=SPECS) for n, c, k, _ in BUGS]
    sources += [render_repro(CASES[0], "X3:late"), render_repro(ITERATE, "I7:task")]
    paths = []
    for i, source in enumerate(sources):
        paths.append(tmp_path / f"repro{i}.py")
        paths[-1].write_text(source)
    rules = "E,W,F,I,UP,B,C4,SIM,PIE,RET,PT,ASYNC,RUF"  # the project's, less T20
    argv = [ruff, "check", "--isolated", "--select", rules, "--ignore", "E501"]
    argv += ["--target-version", "py311", *map(str, paths)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
