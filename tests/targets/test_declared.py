"""Declared layer semantics: a user layer that transforms the request body,
buffers or encodes the response says so, and is judged by what it declared;
the same layer with a planted bug gets the finding its bug deserves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from asgifuzz._errors import UsageError
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets import specs
from asgifuzz._targets.config import TargetConfig, load_config
from asgifuzz._targets.declarations import NOTHING, Declaration, declaration
from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Server, Stack
from asgifuzz.strategies import cases
from asgifuzz.strategies._user import allow_middleware

TESTS = Path(__file__).parent

RECASE: dict[str, Any] = {
    "spec": "declared_code:Recase",
    "transforms": ["request-body"],
}
BUFFER: dict[str, Any] = {"spec": "declared_code:Buffer", "buffers": True}
GZIP: dict[str, Any] = {
    "spec": "declared_code:Gzipper",
    "encodes": "gzip",
    "needs": {"headers": ["accept-encoding: gzip"]},
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """declared_code importable; what a test allows in the process is forgotten."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setattr(specs, "_MIDDLEWARE", {})
    monkeypatch.setattr(specs, "_APPS", {})


@pytest.fixture
def registry() -> Iterator[None]:
    """A registry of this test's own: names are per test."""
    with specs.scoped(({}, {})):
        yield


def _with_bug(entry: Mapping[str, Any], bug: str) -> dict[str, Any]:
    return {**entry, "spec": f"{entry['spec']}(bug={bug!r})"}


def _keys(
    layers: Mapping[str, Mapping[str, Any]],
    stack: tuple[str, ...],
    backend: str,
    **parts: Any,
) -> set[str]:
    with specs.scoped(({}, {})):
        allow_middleware(layers)
        kinds = tuple(k if "." in k else f"user.{k}" for k in stack)
        case = Case(stack=Stack(tuple(Layer(k) for k in kinds)), **parts)
        verdict = judge(case, (backend,))
    return {v.key for vs in verdict.violations.values() for v in vs}


# --- the request-body transformer ------------------------------------------------

BODY = Request(method="POST", body=(b"ab", b"cd", b""))


def test_a_transformer_is_judged_by_what_it_passes_down(backend: str) -> None:
    echo = Endpoint(kind="stream_body")
    undeclared = {"T": {"spec": RECASE["spec"]}}
    assert _keys(undeclared, ("T",), backend, endpoint=echo, request=BODY) == {"I3"}
    assert not _keys({"T": RECASE}, ("T",), backend, endpoint=echo, request=BODY)
    # Below it, a reader still gets what it passed down (a read_body model too).
    stack = ("T", "asgi.read_body", "bhm.passthrough")
    assert not _keys({"T": RECASE}, stack, backend, endpoint=echo, request=BODY)


def test_a_transformer_that_drops_the_final_message_hangs_the_app(
    backend: str,
) -> None:
    layers = {"T": _with_bug(RECASE, "skip-empty")}
    # hypercorn ends a body with an empty message (uvicorn marks the last data).
    found = _keys(
        layers,
        ("T",),
        backend,
        endpoint=Endpoint(kind="echo"),
        request=BODY,
        server=Server(name="hypercorn"),
    )
    assert found == {"I4:response"}


def test_a_transformer_that_ends_early_loses_the_rest(backend: str) -> None:
    layers = {"T": _with_bug(RECASE, "first-only")}
    found = _keys(layers, ("T",), backend, endpoint=Endpoint(kind="echo"), request=BODY)
    assert found == {"I3"}


def test_a_loss_above_a_transformer_is_not_its_own(backend: str) -> None:
    # A BaseHTTPMiddleware above that consumed request.stream() hands it b""
    # (Starlette's documented policy): it read all that was due to it
    # (msgpack-asgi below bhm.read_stream was charged with the client's bytes).
    stack = ("bhm.read_stream", "T")
    echo = Endpoint(kind="echo")
    assert _keys({"T": RECASE}, stack, backend, endpoint=echo, request=BODY) == set()
    # Starlette's is_disconnected() above drops the body (report A): it got the
    # final message, so the loss is not its own (msgpack-asgi was charged)
    above = ("bhm.poll_disconnect", "bhm.passthrough", "bhm.passthrough", "T")
    five = Request(method="GET", body=(b"\xdd\x00\x00\x00\x00",))
    parts = {
        "endpoint": Endpoint(kind="stream", chunks=0),
        "server": Server("hypercorn"),
    }
    assert _keys({"T": RECASE}, above, backend, request=five, **parts) == set()
    # below a transformer that ends its body early, the loss is that one's
    two = {"A": _with_bug(RECASE, "first-only"), "T": RECASE}
    found = _keys(two, ("A", "T"), backend, endpoint=echo, request=BODY)
    assert found == {"I3"}


# --- the buffer ------------------------------------------------------------------

STREAM = Endpoint(kind="stream", chunks=3, interval=1)


def test_a_buffer_is_not_charged_for_streaming_what_it_declares(backend: str) -> None:
    undeclared = {"B": {"spec": BUFFER["spec"]}}
    assert _keys(undeclared, ("B",), backend, endpoint=STREAM) == {"I4:streaming"}
    assert not _keys({"B": BUFFER}, ("B",), backend, endpoint=STREAM)
    text_only = {"B": {**BUFFER, "buffers": ["text/plain"]}}
    assert not _keys(text_only, ("B",), backend, endpoint=STREAM)
    events = Endpoint(
        kind="stream", chunks=3, interval=1, media_type="text/event-stream"
    )
    assert _keys(text_only, ("B",), backend, endpoint=events) == {"I4:streaming"}
    text_star = {"B": {**BUFFER, "buffers": ["text/*"]}}
    assert not _keys(text_star, ("B",), backend, endpoint=events)


def test_a_buffer_that_loses_the_last_chunk(backend: str) -> None:
    layers = {"B": _with_bug(BUFFER, "lose-last")}
    assert _keys(layers, ("B",), backend) == {"I8:body-"}  # PlainText: one message
    assert _keys(layers, ("B",), backend, endpoint=STREAM) == set()  # last is b""


def test_a_buffer_that_never_flushes_when_the_client_leaves(backend: str) -> None:
    layers = {"B": _with_bug(BUFFER, "no-flush")}
    gone = Client(disconnect="body_message", at=0)
    assert _keys(layers, ("B",), backend, endpoint=STREAM, client=gone) == set()
    stack = ("B", "asgi.passthrough")
    found = _keys(
        layers, stack, backend, endpoint=STREAM, client=Client("checkpoints", 3)
    )
    assert found == {"I4:app"}


# --- the encoder -----------------------------------------------------------------


def test_an_encoders_coding_and_vary_are_no_difference(backend: str) -> None:
    # A BaseHTTPMiddleware below re-streams the body: Gzipper passes it on as it
    # is, while without it Gzipper compresses. What a client decodes is alike.
    stack = ("G", "bhm.passthrough")
    undeclared = {"G": {k: v for k, v in GZIP.items() if k != "encodes"}}
    assert _keys(undeclared, stack, backend) == {"I8:headers-"}
    assert not _keys({"G": GZIP}, stack, backend)


def test_an_encoder_that_breaks_its_stream(backend: str) -> None:
    layers = {"G": _with_bug(GZIP, "truncate")}
    assert _keys(layers, ("G",), backend) == {"I8:body"}


def test_an_encoder_that_keeps_the_old_content_length(backend: str) -> None:
    layers = {"G": _with_bug(GZIP, "keep-length")}
    assert _keys(layers, ("G",), backend) == {"I11:content-length"}


def test_a_coding_not_decodable_here_is_not_compared(backend: str) -> None:
    # "compress" has no decoder here: neither the body nor the coding is judged.
    stack = ("G", "bhm.passthrough")
    layers = {"G": {**GZIP, "spec": "declared_code:Gzipper(coding='compress')"}}
    undeclared = {"G": {**layers["G"], "encodes": []}}
    assert _keys(undeclared, stack, backend) == {"I8:body"}
    assert not _keys({"G": {**layers["G"], "encodes": "compress"}}, stack, backend)


def test_a_layer_that_does_not_pass_a_body_on_is_not_held_to_it(backend: str) -> None:
    from asgifuzz._driver.runner import run
    from asgifuzz._oracles.promises import promises

    with specs.scoped(({}, {})):
        allow_middleware({"B": _with_bug(BUFFER, "lose-last")})
        for endpoint, method in [
            (Endpoint(kind="raise_streaming", chunks=2), "GET"),  # incomplete below
            (Endpoint(), "HEAD"),  # the server drops a HEAD body
        ]:
            case = Case(
                stack=Stack((Layer("user.B"),)),
                endpoint=endpoint,
                request=Request(method=method),
            )
            assert promises(run(case, backend)) == []


# --- all three, fuzzed -----------------------------------------------------------

DECLARED: dict[str, dict[str, Any]] = {"T": RECASE, "B": BUFFER, "G": GZIP}
#: Pure-ASGI pass-throughs, judged on asyncio: what is left with Starlette's
#: BaseHTTPMiddleware around a buffer, or on trio, is Starlette's, shown by the
#: timing a layer changes, which the stand-ins of attribution do not reproduce.
BUILTIN = ("asgi.passthrough",)


class _Found(Exception):
    """The key a fuzzing run looked for came up: stop it there."""


def _fuzz(
    layers: Mapping[str, Mapping[str, Any]], examples: int, until: str = ""
) -> dict[str, int]:
    """The failure keys fuzzing a stack of ``layers`` finds, each with the
    number of the first case that showed it (stopping once ``until`` shows)."""
    registry: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    with specs.scoped(registry):
        strategy = cases(middleware=layers, builtin=BUILTIN)
    found: dict[str, int] = {}
    seen = [0]

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(strategy)
        seen[0] += 1
        with specs.scoped(registry):
            verdict = judge(case, ("asyncio",))
        for violations in verdict.violations.values():
            for v in violations:
                found.setdefault(v.key, seen[0])
        if until in found:
            raise _Found

    with contextlib.suppress(_Found):
        fuzz()
    return found


def test_declared_layers_give_no_finding() -> None:
    assert _fuzz(DECLARED, 150) == {}


@pytest.mark.parametrize(
    ("name", "bug", "key"),
    [
        ("T", "skip-empty", "I4:response"),
        ("T", "first-only", "I3"),
        ("B", "lose-last", "I8:body-"),
        ("B", "no-flush", "I4:app"),
        ("G", "truncate", "I8:body"),
        ("G", "keep-length", "I11:content-length"),
    ],
)
def test_each_planted_bug_is_found(name: str, bug: str, key: str) -> None:
    layers = {**DECLARED, name: _with_bug(DECLARED[name], bug)}
    assert key in _fuzz(layers, 1500, until=key)


# --- declarations, read and checked ------------------------------------------------


def test_needs_reach_every_request(backend: str) -> None:
    from asgifuzz._driver.server import make_scope

    needs = {"headers": ["x-api-key: s3", "accept-encoding: br"], "cookies": ["a=1"]}
    layers = {
        "P": {"spec": "declared_code:Buffer", "needs": {**needs, "state": {"t": [1]}}}
    }
    with specs.scoped(({}, {})):
        allow_middleware(layers)
        drawn = Request(headers=(("accept-encoding", "gzip"), ("cookie", "b=2")))
        scope = make_scope(Case(stack=Stack((Layer("user.P"),)), request=drawn))
    assert (b"x-api-key", b"s3") in scope["headers"]
    assert [v for k, v in scope["headers"] if k == b"accept-encoding"] == [b"br"]
    assert (b"cookie", b"a=1; b=2") in scope["headers"]
    assert scope["state"] == {"t": [1]}
    assert make_scope(Case())["headers"] == [(b"host", b"testserver")]
    with specs.scoped(({}, {})):
        allow_middleware({"P": {"spec": "declared_code:Buffer", "needs": needs}})
        scope = make_scope(Case(stack=Stack((Layer("user.P"),))))
    assert (b"cookie", b"a=1") in scope["headers"]
    assert "state" not in scope


def test_two_tests_may_name_one_class_differently() -> None:
    for bug in ("", "truncate"):
        with specs.scoped(({}, {})):
            allow_middleware({"G": _with_bug(GZIP, bug)})
            assert specs.middleware_target("G").args == ()
            assert specs.middleware_target("G").kwargs == {"bug": bug}
    with pytest.raises(UsageError, match="allowed: none"):
        specs.middleware_target("G")


def test_pyproject_tables_declare_each_layer(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[tool.asgifuzz.middleware.G]\n"
        'spec = "declared_code:Gzipper"\nencodes = ["gzip"]\n'
        'needs = {headers = ["accept-encoding: gzip"], state = {tenant = "a"}}\n'
        "[tool.asgifuzz.middleware.B]\n"
        'spec = "B=declared_code:Buffer"\nbuffers = ["Text/Plain"]\n'
        'scopes = ["http", "websocket"]\n'
        "[tool.asgifuzz.middleware.T]\n"
        'transforms = ["request-body"]\n'
    )
    config = load_config(path)
    assert config.middleware == ("G=declared_code:Gzipper", "B=declared_code:Buffer")
    declared = dict(config.declarations)
    assert declared["G"] == Declaration(
        encodes=("gzip",),
        headers=(("accept-encoding", "gzip"),),
        state={"tenant": "a"},
    )
    assert declared["B"].buffering("text/plain; charset=utf-8")
    assert not declared["B"].buffering("text/html")
    assert declared["T"].request_body
    assert not declared["T"].response_body
    with pytest.raises(UsageError, match=r"middleware\.T\] declares a layer with no"):
        config.allow()
    with specs.scoped(({}, {})):
        with_t = TargetConfig(
            middleware=(*config.middleware, "T=declared_code:Recase"),
            declarations=config.declarations,
        )
        mws, _ = with_t.allow()
        assert [m.declared for m in mws] == [
            declared["G"],
            declared["B"],
            declared["T"],
        ]
    assert load_config_text(tmp_path, 'middleware = {A = "declared_code:Buffer"}')
    assert NOTHING.buffering("text/plain") is False


def load_config_text(tmp_path: Path, body: str) -> TargetConfig:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.asgifuzz]\n{body}\n")
    return load_config(path)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("transform = ['request-body']", r"unknown key 'transform'"),
        ("transforms = ['body']", r"transforms has 'body', which is not one of"),
        ("transforms = 3", r"transforms must be a list of strings"),
        ("buffers = ['text']", r"buffers has 'text', which is not a media type"),
        ("encodes = 'gz'", r"encodes has 'gz'"),
        ("scopes = ['websocket']", r"leaves out 'http', which every"),
        ("scopes = ['http', 'ws']", r"scopes has 'ws'"),
        ("needs = 'x'", r"needs must be a table"),
        ("needs = {header = []}", r"needs has unknown key 'header'"),
        ("needs = {headers = ['nocolon']}", r"needs.headers has 'nocolon'"),
        ("needs = {cookies = ['a=1; b=2']}", r"needs.cookies has 'a=1; b=2'"),
        ("needs = {state = 3}", r"needs.state must be a table"),
        ("spec = 3", r"spec must be a string"),
        ("spec = 'X=declared_code:Buffer'", r"names the layer 'X', not 'G'"),
    ],
)
def test_bad_declarations_name_the_file_table_key_and_fix(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.asgifuzz.middleware.G]\n{table}\n")
    with pytest.raises(UsageError, match=message) as info:
        load_config(path)
    assert f"{path}: [tool.asgifuzz.middleware.G]" in str(info.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("middleware = 3", "must be a list of strings"),
        ("middleware = [3]", "must be a list of strings"),
        ("middleware = {G = 3}", r"\[tool.asgifuzz.middleware.G\] must be a table"),
    ],
)
def test_bad_middleware_tables(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_config_text(tmp_path, body)


def test_the_dict_form_checks_its_keys(registry: None) -> None:
    from hypothesis.errors import InvalidArgument

    with pytest.raises(
        InvalidArgument, match=r"middleware\['G'\]: unknown key 'encode'"
    ):
        allow_middleware({"G": {"spec": "declared_code:Gzipper", "encode": "gzip"}})
    with pytest.raises(InvalidArgument, match="no 'spec'"):
        allow_middleware([{"encodes": "gzip"}])
    from declared_code import Buffer  # tests/targets, on sys.path for this test

    assert allow_middleware([{"spec": Buffer, "buffers": True}]) == ["user.Buffer"]
    assert specs.middleware_target("Buffer").declared == declaration(
        {"buffers": True}, ""
    )


def test_a_bad_declaration_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from asgifuzz._cli.main import main

    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.asgifuzz.middleware.G]\nbuffers = 'yes'\n")
    argv = ["fuzz", "--max-time", "1", "--no-database", "--progress", "off"]
    assert main([*argv, "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "[tool.asgifuzz.middleware.G]: buffers has 'yes'" in err[0]


@pytest.mark.parametrize(("bug", "code"), [("keep-length", 1), ("", 0)])
def test_the_cli_reads_the_declarations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bug: str, code: int
) -> None:
    from asgifuzz._cli.main import main

    config = tmp_path / "pyproject.toml"
    config.write_text(
        "[tool.asgifuzz]\nbuiltin = false\n"
        "[tool.asgifuzz.middleware.G]\n"
        f'spec = "declared_code:Gzipper(bug={bug!r})"\nencodes = "gzip"\n'
        'needs = {headers = ["accept-encoding: gzip"]}\n'
    )
    argv = ["fuzz", "--max-time", "3", "--no-database", "--progress", "off"]
    assert main([*argv, "--backend", "asyncio", "--config", str(config)]) == code
    out = capsys.readouterr().out
    assert ("I11:content-length" in out) == bool(bug)


PLUGIN_TESTS = """
import asgifuzz
from hypothesis import Phase, settings
from declared_code import Gzipper

GZIP = {"encodes": "gzip", "needs": {"headers": ["accept-encoding: gzip"]}}


@settings(max_examples=20, derandomize=True, database=None)
@asgifuzz.given_cases(middleware={"G": {**GZIP, "spec": Gzipper}}, builtin=False)
def test_fixed(case):
    asgifuzz.check(case)


@settings(
    max_examples=20,
    derandomize=True,
    database=None,
    phases=[Phase.generate, Phase.shrink],
)
@asgifuzz.given_cases(
    middleware={"G": {**GZIP, "spec": (Gzipper, {"bug": "keep-length"})}},
    builtin=False,
)
def test_buggy(case):
    asgifuzz.check(case)
"""


def test_two_plugin_tests_name_one_class_with_other_arguments(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user=PLUGIN_TESTS)
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )
    code = (TESTS / "declared_code.py").read_text()
    (pytester.path / "declared_code.py").write_text(code)
    root = TESTS.parents[1]  # this checkout's asgifuzz, whatever is installed
    monkeypatch.setenv("PYTHONPATH", f"{pytester.path}:{root}")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*test_fixed PASSED*"])
    result.stdout.fnmatch_lines(["*test_buggy FAILED*"])
    result.stdout.fnmatch_lines(
        ["*test_buggy: new corpus entry corpus/new/i11-content-length-*.json*"]
    )
    result.stdout.fnmatch_lines(
        ["*replay: *--middleware 'G=declared_code:Gzipper(bug=*keep-length*)'"]
    )
