"""Standalone reproducers: they fail where asgifuzz fails, and need only Starlette."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asgifuzz._corpus.entries import Entry, load_corpus, starlette_version
from asgifuzz._oracles.verdict import judge
from asgifuzz._repro.script import render_repro
from asgifuzz.models import (
    BACKGROUNDS,
    DISCONNECTS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    SERVERS,
    Case,
    Client,
    Endpoint,
    Layer,
    Request,
    Server,
    Stack,
)
from asgifuzz.models._parts import STACK_MODES

CORPUS = Path(__file__).parents[2] / "corpus"
ENTRIES = load_corpus(CORPUS)
VERSION = starlette_version()
ALLOWED_IMPORTS = {"starlette", "anyio", "trio"} | set(sys.stdlib_module_names)
assert "hypothesis" not in ALLOWED_IMPORTS
POST = Request(method="POST", body=(b"ab", b"cd"))


def run_script(
    tmp_path: Path, source: str, backend: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "repro.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, str(script), backend],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.path.stem for e in ENTRIES])
def test_corpus_entry_reproduces_standalone(
    entry: Entry, backend: str, tmp_path: Path
) -> None:
    """Exit 1 on an affected release, 0 on a fixed one (CI runs two releases)."""
    if backend not in entry.backends:
        pytest.skip(f"{entry.path.name} is judged on {list(entry.backends)} only")
    source = entry_script(entry)
    if source is None:  # no template renders it: its hand-written report's script
        written = hand_written(entry)
        if backend != "asyncio":
            pytest.skip(f"{written.name} (hand-written) runs on asyncio")
        source = written.read_text()
    done = run_script(tmp_path, source, backend)
    affected = entry.affects(VERSION)
    assert done.returncode == int(affected), (
        f"{entry.key} on Starlette {VERSION} ({backend}): expected exit "
        f"{int(affected)}, got {done.returncode}\n{done.stdout}\n{done.stderr}"
    )


def entry_script(entry: Entry) -> str | None:
    """The script `asgifuzz repro` writes for ``entry``, or None where it
    refuses the case (a field no script renders yet, named in its error)."""
    try:
        return render_repro(
            entry.case, entry.key, title=entry.title, upstream=entry.upstream
        )
    except ValueError as exc:
        if "which no script renders yet" not in str(exc):
            raise
        return None


def hand_written(entry: Entry) -> Path:
    """The hand-written reproducer of an entry no template renders: its report's
    script, ``corpus/reports/<letter>-<entry>.py`` (there must be one)."""
    (found,) = CORPUS.glob(f"reports/?-{entry.path.stem}.py")
    return found


def packed_cases() -> list[Case]:
    """Ten cases that hold every layer kind, endpoint kind, profile and schedule."""
    cases = []
    for i in range(10):
        layers = tuple(
            Layer(LAYER_KINDS[(3 * i + j) % len(LAYER_KINDS)], pauses=(j % 2, i % 2))
            for j in range(3)
        )
        endpoint = Endpoint(
            kind=ENDPOINT_KINDS[(i + 1) % len(ENDPOINT_KINDS)],
            chunks=2,
            interval=i % 2,
            background=BACKGROUNDS[i % len(BACKGROUNDS)],
            on_disconnect=("raise", "respond")[i % 2],
            pauses=(i % 2, 1),
        )
        cases.append(
            Case(
                stack=Stack(layers, mode=STACK_MODES[i % 2]),
                endpoint=endpoint,
                request=POST,
                client=Client(DISCONNECTS[i % len(DISCONNECTS)], at=i % 3),
                server=Server(SERVERS[i % len(SERVERS)], send_checkpoints=i % 2),
                seed=i,
            )
        )
    return cases


def test_packed_cases_cover_every_kind() -> None:
    cases = packed_cases()
    assert {la.kind for c in cases for la in c.stack.layers} == set(LAYER_KINDS)
    assert {c.endpoint.kind for c in cases} == set(ENDPOINT_KINDS) - {"plain"}
    assert {c.server.name for c in cases} == set(SERVERS)
    assert {c.client.disconnect for c in cases} == set(DISCONNECTS)


#: Cases with a large request body (written in pieces) and sized responses.
_BIG = b'{"data": "' + b"a" * 300_000
SIZED_CASES = [
    Case(  # is-disconnected-drops-body-truncated (I3) with a 600 KB body
        stack=Stack((Layer("bhm.poll_disconnect"),)),
        endpoint=Endpoint("echo"),
        request=Request(method="POST", body=(_BIG, b"a" * 300_000 + b'"}')),
    ),
    Case(
        stack=Stack((Layer("bhm.read_stream"),)),
        endpoint=Endpoint("echo"),
        request=Request(method="POST", body=(_BIG, b"a" * 300_000 + b'"}')),
        server=Server("daphne"),
    ),
    Case(
        stack=Stack((Layer("starlette.gzip", options={"minimum_size": 500}),)),
        endpoint=Endpoint(size=1024),
        request=Request(headers=(("accept-encoding", "br;q=1, gzip;q=0.5"),)),
    ),
    Case(
        stack=Stack((Layer("asgi.passthrough"),), mode="wrap"),
        endpoint=Endpoint(
            "stream", chunks=2, interval=1, size=2000, compressible=False
        ),
        client=Client("body_message", at=1),
    ),
]


@pytest.mark.parametrize("index", range(len(SIZED_CASES)))
def test_sized_script_agrees_with_asgifuzz(
    index: int, backend: str, tmp_path: Path
) -> None:
    """Large bodies and sized responses reproduce as asgifuzz runs them."""
    _agrees(SIZED_CASES[index], backend, tmp_path)


def test_a_large_body_is_written_in_pieces() -> None:
    assert [v.key for v in judge(SIZED_CASES[0], ("asyncio",)).violations["asyncio"]]
    source = render_repro(SIZED_CASES[0], "I3")
    assert len(source) < 30_000
    assert 'b\'{"data": "\' + b"a" * 300000' in source  # the first segment
    assert 'b"a" * 600000' in source  # what the endpoint must read
    assert 'b"a" * 8182' in render_repro(SIZED_CASES[1], "I3")  # daphne: 8192 bytes


@pytest.mark.parametrize("index", range(10))
def test_script_agrees_with_asgifuzz(index: int, backend: str, tmp_path: Path) -> None:
    """The script shows a key exactly when asgifuzz reports it for the case."""
    _agrees(packed_cases()[index], backend, tmp_path)


def _agrees(case: Case, backend: str, tmp_path: Path) -> None:
    reported = {v.key for v in judge(case, (backend,)).violations[backend]}
    for key in sorted(reported | {"I1:RuntimeError"}):
        try:
            source = render_repro(case, key)
        except ValueError:
            assert key in reported  # an unsupported key asgifuzz did report
            continue
        done = run_script(tmp_path, source, backend)
        assert done.returncode == int(key in reported), (
            f"{key}: asgifuzz reports {sorted(reported)}, the script exits "
            f"{done.returncode}\n{done.stdout}\n{done.stderr}"
        )


GZIP = Request(headers=(("accept-encoding", "gzip"),))


@pytest.mark.parametrize(
    "case",
    [
        Case(
            stack=Stack((Layer("starlette.gzip", options={"minimum_size": 0}),)),
            endpoint=Endpoint(
                "stream", chunks=3, media_type="text/event-stream", interval=1
            ),
            request=GZIP,
        ),
        Case(
            stack=Stack((Layer("bhm.transform_body"),)),
            endpoint=Endpoint("stream", chunks=3, interval=1),
            client=Client("body_message", at=1),
        ),
    ],
    ids=["gzip-event-stream", "transformed-client-leaves"],
)
def test_streaming_script_agrees_with_asgifuzz(
    case: Case, backend: str, tmp_path: Path
) -> None:
    """I4:streaming decodes what the server has and spares a client that left."""
    reported = {v.key for v in judge(case, (backend,)).violations[backend]}
    done = run_script(tmp_path, render_repro(case, "I4:streaming"), backend)
    assert done.returncode == int("I4:streaming" in reported), (
        f"asgifuzz reports {sorted(reported)}, the script exits {done.returncode}\n"
        f"{done.stdout}\n{done.stderr}"
    )
    assert "when the endpoint made chunk 1, the client could decode" in done.stdout


#: A case on which each supported key applies, to render each check once.
KEYED_CASES = {
    "I1:RuntimeError": Case(),
    "I1:500": Case(),
    "I1:incomplete": Case(),
    "I2:request-after-body": Case(stack=Stack((Layer("bhm.passthrough"),))),
    "I3": Case(stack=Stack((Layer("bhm.read_stream"),)), endpoint=Endpoint("echo")),
    "I4:response": Case(),
    "I4:app": Case(),
    "I4:streaming": Case(endpoint=Endpoint("stream", chunks=3, interval=1)),
    "I5:never": Case(stack=Stack((Layer("bhm.background"), Layer("asgi.catch")))),
    "I5:blocking": Case(endpoint=Endpoint(background="wait")),
    "I6:collapsed": Case(endpoint=Endpoint("raise", group=True)),
    "I6:wrapped": Case(endpoint=Endpoint("raise")),
    "I7:asyncgen": Case(),
    "I7:MemoryObjectReceiveStream": Case(),
    "I8:complete": Case(stack=Stack((Layer("asgi.passthrough"),), mode="wrap")),
    "I9:endpoint": Case(endpoint=Endpoint("wait_disconnect")),
}


def rendered_scripts() -> list[str]:
    """Scripts for the corpus, every kind one at a time, and every check."""
    sources = [entry_script(e) or hand_written(e).read_text() for e in ENTRIES]
    kinds = [
        Case(stack=Stack((Layer(k, pauses=(1, 1)),)), request=POST) for k in LAYER_KINDS
    ]
    kinds += [
        Case(endpoint=Endpoint(k, pauses=(1, 1), background="checkpoint"))
        for k in ENDPOINT_KINDS
    ]
    kinds += [Case(server=Server(n, send_checkpoints=1)) for n in SERVERS]
    kinds += [Case(client=Client(d, at=1)) for d in DISCONNECTS]
    sources += [render_repro(c, "I1:RuntimeError") for c in kinds + SIZED_CASES]
    return sources + [render_repro(c, key) for key, c in KEYED_CASES.items()]


def test_scripts_import_only_starlette_anyio_and_trio() -> None:
    for source in rendered_scripts():
        tree = ast.parse(source)
        modules = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        modules |= {
            node.module or ""
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        tops = {m.partition(".")[0] for m in modules}
        assert tops <= ALLOWED_IMPORTS, tops - ALLOWED_IMPORTS


def test_scripts_compile_and_pass_ruff(tmp_path: Path) -> None:
    paths = []
    for i, source in enumerate(rendered_scripts()):
        compile(source, f"repro{i}.py", "exec")
        paths.append(tmp_path / f"repro{i}.py")
        paths[-1].write_text(source)
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed here")
    rules = "E,W,F,I,UP,B,C4,SIM,PIE,RET,PT,ASYNC,RUF"  # the project's, less T20
    done = subprocess.run(
        [
            ruff,
            "check",
            "--isolated",
            "--select",
            rules,
            "--ignore",
            "E501",
            "--target-version",
            "py311",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("key", ["I10", "I4:stuck", "I7:unraisable", "I2", "I1:oops"])
def test_unsupported_key_is_refused(key: str) -> None:
    with pytest.raises(
        ValueError, match=rf"{key}.*supported keys: I1:<exception type>"
    ):
        render_repro(Case(), key)


@pytest.mark.parametrize(
    ("key", "case"),
    [
        ("I4:response", Case(endpoint=Endpoint("wait_disconnect"))),
        ("I4:streaming", Case(endpoint=Endpoint("stream", chunks=1, interval=1))),
        (
            "I4:streaming",
            Case(
                stack=Stack((Layer("starlette.gzip"),)),
                endpoint=Endpoint("stream", chunks=2, interval=1),
            ),
        ),
        ("I9:endpoint", Case()),
        ("I5:never", Case()),
        ("I5:blocking", Case(endpoint=Endpoint(background="checkpoint"))),
        ("I8:complete", Case()),
        (
            "I8:complete",
            Case(stack=Stack((Layer("bhm.passthrough"),)), client=Client("receive")),
        ),
    ],
)
def test_key_that_cannot_show_is_refused(key: str, case: Case) -> None:
    with pytest.raises(ValueError, match="cannot show on this case"):
        render_repro(case, key)


def test_header_says_what_is_expected_and_links_upstream(tmp_path: Path) -> None:
    source = render_repro(
        Case(), "I4:response", title="it hangs", upstream="https://example.invalid/1"
    )
    assert source.startswith('"""it hangs\n')
    done = run_script(tmp_path, source, "asyncio")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("expected: the client gets its complete response")
    assert lines[2:4] == ["bug: it hangs", "upstream: https://example.invalid/1"]
    assert lines[-1].startswith("not reproduced")
