"""Declarations in a spec string: ``module:Class(args); key=literal, ...``, the
same keys as ``[tool.asgifuzz.middleware.NAME]``, read as literals and never
evaluated; a bad one is one error naming the spec, the value and the fix."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis.errors import InvalidArgument

from asgifuzz._errors import UsageError
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets import specs
from asgifuzz._targets.config import TargetConfig, load_config
from asgifuzz._targets.declarations import NOTHING, Declaration, spec_name
from asgifuzz._targets.spec_text import parse_spec, spec_declarations, split_declared
from asgifuzz.models import Case, Layer, Stack
from asgifuzz.strategies._user import allow_middleware

TESTS = Path(__file__).parent
GZIP = "encodes='gzip', needs={'headers': ['accept-encoding: gzip']}"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """declared_code importable; what a test allows in the process is forgotten."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setattr(specs, "_MIDDLEWARE", {})
    monkeypatch.setattr(specs, "_APPS", {})


@pytest.mark.parametrize(
    ("spec", "base", "declared"),
    [
        ("a:B", "a:B", {}),
        ("a:B;", "a:B", {}),
        ("a:B(x=';', y=[1, 2])", "a:B(x=';', y=[1, 2])", {}),
        ("N=a:B(x=1); encodes='gzip', buffers=True", "N=a:B(x=1)", None),
        (
            "a:B; transforms=['request-body']; needs={'headers': ['a: b;c']}",
            "a:B",
            {"transforms": ["request-body"], "needs": {"headers": ["a: b;c"]}},
        ),
    ],
)
def test_a_spec_ends_with_its_declarations(
    spec: str, base: str, declared: dict[str, object] | None
) -> None:
    assert split_declared(spec)[0].strip() == base
    assert parse_spec(spec, "--middleware", declarations=True) == parse_spec(
        base, "--middleware"
    )
    got = spec_declarations(spec, "--middleware")
    assert got == (
        declared
        if declared is not None
        else {
            "encodes": "gzip",
            "buffers": True,
        }
    )


def test_the_declarations_reach_the_target() -> None:
    spec = "G=declared_code:Gzipper(bug=''); " + GZIP + "; buffers=['text/*']"
    target = specs.load_middleware(spec)
    assert spec_name(spec) == "G"
    assert target.kwargs == {"bug": ""}
    assert target.spec == spec  # the replay command allows it again, declared
    assert target.declared == Declaration(
        encodes=("gzip",),
        headers=(("accept-encoding", "gzip"),),
        buffers=("text/*",),
    )
    assert specs.load_middleware("declared_code:Buffer").declared == NOTHING


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a:B; encodes=gzip", r"the declaration encodes=gzip is not a Python literal"),
        ("a:B; buffers=true", r"the declaration buffers=true is not a Python literal"),
        ("a:B; 'gzip'", r"the declaration \"'gzip'\" is not key=literal"),
        ("a:B; encodes=(", r"the declaration 'encodes=\(' is not key=literal"),
        ("a:B; **x", r"the declaration '\*\*x' is not key=literal"),
        ("a:B; encodes='br'; encodes='gzip'", r"'encodes' is given twice"),
        ("a:B; spec='c:D'", r"'spec' is not a declaration"),
    ],
)
def test_a_bad_declaration_names_the_spec_value_and_fix(
    spec: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        spec_declarations(spec, "--middleware")
    assert str(info.value).startswith(f"--middleware {spec!r}: ")


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("encodes='gz'", r"encodes has 'gz', which is not one of"),
        ("buffers='yes'", r"buffers has 'yes', which is not a media type"),
        ("transform=['request-body']", r"unknown key 'transform'"),
        ("scopes=['websocket']", r"leaves out 'http'"),
    ],
)
def test_a_wrong_value_is_checked_as_in_a_table(tail: str, message: str) -> None:
    spec = f"declared_code:Buffer; {tail}"
    with pytest.raises(UsageError, match=message) as info:
        specs.load_middleware(spec)
    assert str(info.value).startswith(f"--middleware {spec!r}: ")


def test_a_spec_that_is_not_python_tokens_is_an_import_spec_error() -> None:
    # tokenize fails (an unclosed bracket): no declarations are split off, and
    # the spec is refused as it stands
    assert split_declared("a:B(x=1; y=2") == ("a:B(x=1; y=2", "")
    with pytest.raises(UsageError, match="is not an import spec"):
        parse_spec("a:B(x=1; y=2", "--middleware", declarations=True)


def test_an_app_spec_takes_no_declarations() -> None:
    with pytest.raises(UsageError, match=r"for a middleware spec only"):
        specs.load_app("declared_code:app; buffers=True")


def test_a_layer_is_declared_once(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[tool.asgifuzz.middleware.B]\n"
        'spec = "declared_code:Buffer; buffers=True"\nbuffers = true\n'
    )
    with pytest.raises(UsageError, match=r"declared twice, in the spec and in .*B\]"):
        load_config(path).allow()
    path.write_text(
        '[tool.asgifuzz]\nmiddleware = ["B=declared_code:Buffer; buffers=True"]\n'
    )
    with specs.scoped(({}, {})):
        [target], _ = load_config(path).allow()
        assert target.declared.buffers is True
    with specs.scoped(({}, {})), pytest.raises(InvalidArgument, match="twice"):
        allow_middleware(
            {"B": {"spec": "declared_code:Buffer; buffers=True", "buffers": True}}
        )
    with specs.scoped(({}, {})):
        assert allow_middleware(
            {"B": {"spec": "declared_code:Buffer; buffers=True"}}
        ) == ["user.B"]
        assert specs.middleware_target("B").declared.buffers is True


def test_a_declared_encoder_is_judged_as_one(backend: str) -> None:
    # A BaseHTTPMiddleware below re-streams the body: Gzipper passes it on as it
    # is, while without it Gzipper compresses (tests/targets/test_declared.py).
    case = Case(stack=Stack((Layer("user.G"), Layer("bhm.passthrough"))))
    keys = []
    for tail in ["; needs={'headers': ['accept-encoding: gzip']}", f"; {GZIP}"]:
        with specs.scoped(({}, {})):
            specs.allow_middleware(
                specs.load_middleware("G=declared_code:Gzipper" + tail)
            )
            verdict = judge(case, (backend,))
        keys.append({v.key for vs in verdict.violations.values() for v in vs})
    assert keys == [{"I8:headers-"}, set()]


@pytest.mark.parametrize(("bug", "code"), [("keep-length", 1), ("", 0)])
def test_the_cli_reads_a_specs_declarations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bug: str, code: int
) -> None:
    from asgifuzz._cli.main import main

    (tmp_path / "pyproject.toml").write_text("[tool.asgifuzz]\nbuiltin = false\n")
    spec = f"G=declared_code:Gzipper(bug={bug!r}); {GZIP}"
    argv = ["fuzz", "--max-time", "3", "--no-database", "--progress", "off"]
    config = ["--config", str(tmp_path / "pyproject.toml")]
    assert main([*argv, "--backend", "asyncio", *config, "--middleware", spec]) == code
    out = capsys.readouterr().out
    assert ("I11:content-length" in out) == bool(bug)
    assert TargetConfig(middleware=(spec,)).options() == (
        f"--middleware {shlex.quote(spec)}"
    )


def test_a_bad_spec_declaration_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from asgifuzz._cli.main import main

    argv = ["fuzz", "--max-time", "1", "--no-database", "--progress", "off"]
    spec = "declared_code:Buffer; buffers='yes'"
    assert main([*argv, "--middleware", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "buffers has 'yes', which is not a media type" in err[0]
    assert spec in err[0]
