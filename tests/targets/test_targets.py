"""User targets: specs, imports and their errors, the registry, the strategies
that mix them in, the driver's lifespan, and the oracles' policies for them."""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import user_code
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument
from starlette.middleware import Middleware

from asgifuzz._errors import CaseFormatError, UsageError
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets import routes
from asgifuzz._targets import specs as _targets
from asgifuzz._targets.config import TargetConfig, load_config
from asgifuzz._targets.shapes import asgi_problem
from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Server, Stack
from asgifuzz.strategies import cases

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """user_code importable; what a test allows is forgotten after it (the
    strategies made at import time stay allowed)."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))
    monkeypatch.setattr(_targets, "_APPS", dict(_targets._APPS))


def _allow(*objs: object) -> list[str]:
    from asgifuzz.strategies._user import allow_middleware

    return allow_middleware(list(objs))


def _user_case(*kinds: str, **parts: object) -> Case:
    return Case(stack=Stack(tuple(Layer(k) for k in kinds)), **parts)  # type: ignore[arg-type]


# Specs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("pkg.mod:Cls", (None, "pkg.mod", "Cls", (), {})),
        ("Auth=pkg:Outer.Inner()", ("Auth", "pkg", "Outer.Inner", (), {})),
        ("m:C('x', level=2)", (None, "m", "C", ("x",), {"level": 2})),
        (
            "m:C(secret={'a': [1, 2.5]})",
            (None, "m", "C", (), {"secret": {"a": [1, 2.5]}}),
        ),
    ],
)
def test_parse_spec(spec: str, parts: tuple[object, ...]) -> None:
    assert _targets.parse_spec(spec, "--middleware") == parts


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("pkg.mod", "is not an import spec"),
        ("m:C(", "is not an import spec"),
        ("m:C(1 +)", "not Python literals"),
    ],
)
def test_bad_specs_say_how_to_write_one(spec: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        _targets.parse_spec(spec, "--middleware")
    assert "module.path:Class" in str(info.value)


@pytest.mark.parametrize(
    ("spec", "argument"),
    [
        ("m:C(open('x'))", "open('x')"),
        ("m:C(*args)", "*args"),
        ("m:C(1, **kw)", "**kw"),
    ],
)
def test_non_literal_arguments_say_to_write_a_factory(spec: str, argument: str) -> None:
    with pytest.raises(UsageError) as info:
        _targets.parse_spec(spec, "--middleware")
    assert f"the argument {argument} is not a Python literal" in str(info.value)
    assert "def fuzzed(app): return C(app, " in str(info.value)


def test_load_middleware_with_arguments() -> None:
    target = _targets.load_middleware("user_code:Configurable('s3cret', level=3)")
    assert (target.name, target.args, dict(target.kwargs)) == (
        "Configurable",
        ("s3cret",),
        {"level": 3},
    )
    assert target.kind == "user.Configurable"
    made = target.wrap(user_code.raw_app)
    assert isinstance(made, user_code.Configurable)
    assert (made.secret, made.level) == ("s3cret", 3)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_pkg.mw:Timing", "cannot import module 'no_such_pkg.mw'"),
        ("user_code:Stmap", "did you mean \\['Stamp'\\]"),
        ("user_code:Configurable", "rejected its arguments: TypeError"),
        ("user_code:Configurable('x', colour=1)", "rejected its arguments"),
        ("user_code:EVENTS", "is not callable"),
        ("bad name=user_code:Stamp", "is not an import spec"),
    ],
)
def test_import_errors_are_one_clear_usage_error(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        _targets.load_middleware(spec)
    assert spec.split("=")[-1] in str(info.value) or "import spec" in str(info.value)


def test_a_module_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "broken_mod.py").write_text("raise ImportError('needs libfoo')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(UsageError, match="importing 'broken_mod' failed: Import"):
            _targets.load_middleware("broken_mod:X")
    finally:
        sys.path.remove(str(tmp_path))


def test_objects_become_targets_with_replayable_specs() -> None:
    plain = _targets.middleware_from_object(user_code.Stamp)
    assert plain.spec == "user_code:Stamp"
    pair = _targets.middleware_from_object((user_code.Configurable, {"secret": "x"}))
    assert pair.spec == "user_code:Configurable(secret='x')"
    wrapped = _targets.middleware_from_object(Middleware(user_code.Stamp, value="2"))
    assert wrapped.kwargs == {"value": "2"}

    class Local:
        def __init__(self, app: object) -> None:
            self.app = app

        async def __call__(self, *args: object) -> None: ...

    assert _targets.middleware_from_object(Local).spec == ""  # cannot be imported


def test_two_targets_of_one_name_must_be_named() -> None:
    _targets.allow_middleware(_targets.load_middleware("user_code:Configurable('a')"))
    with pytest.raises(UsageError, match="both named 'Configurable'"):
        _targets.allow_middleware(
            _targets.load_middleware("user_code:Configurable('b')")
        )
    other = _targets.load_middleware("ConfigB=user_code:Configurable('b')")
    assert _targets.allow_middleware(other).kind == "user.ConfigB"


def test_routes_are_discovered_through_mounts_and_wrappers() -> None:
    target = _targets.app_from_object(user_code.Stamp(user_code.lifespan_app))
    assert ("POST", "/echo") in target.routes
    assert ("GET", "/items/{item_id:int}") in target.routes  # filled when drawn
    assert ("GET", "/api/ping") in target.routes
    raw = _targets.app_from_object(user_code.raw_app, routes=["PATCH /x"])
    assert raw.routes == (("PATCH", "/x"),)
    assert _targets.app_from_object(user_code.raw_app).routes == (("GET", "/"),)
    with pytest.raises(UsageError, match="not a route"):
        routes.parse_route("FETCH /x")
    with pytest.raises(UsageError, match="not an ASGI app"):
        _targets.app_from_object(user_code.Stamp)
    with pytest.raises(UsageError, match="takes no arguments"):
        _targets.load_app("user_code:lifespan_app(1)")


# The case format -----------------------------------------------------------------


def test_user_kinds_and_apps_round_trip_as_names() -> None:
    case = replace(_user_case("user.Stamp", "bhm.passthrough"), app="main")
    again = Case.from_json(case.to_json())
    assert again == case
    assert json.loads(Case().to_json()).keys() == json.loads(case.to_json()).keys() - {
        "app"
    }


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"stack": {"layers": [{"kind": "user.os.system"}]}}, "stack.layers[0].kind"),
        ({"stack": {"layers": [{"kind": "user."}]}}, "stack.layers[0].kind"),
        ({"app": "os:system"}, "app"),
        ({"app": 1}, "$.app"),
    ],
)
def test_user_names_are_identifiers(patch: dict[str, object], field: str) -> None:
    data = {**json.loads(Case().to_json()), **patch}
    with pytest.raises(CaseFormatError, match=re.escape(f"'{field}'")):
        Case.from_json(json.dumps(data))


def test_a_corpus_file_never_imports_what_it_names(tmp_path: Path) -> None:
    from asgifuzz._cli.main import main

    case = _user_case("user.Sneaky")
    entry = {
        "format": 1,
        "key": "I1:KeyError",
        "status": "new",
        "case": json.loads(case.to_json()),
        "targets": {"middleware": {"Sneaky": "sneaky_module_never_imported:Sneaky"}},
    }
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(entry))
    assert main(["replay", str(path), "--config", str(tmp_path / "none.toml")]) == 2
    assert "sneaky_module_never_imported" not in sys.modules


def test_replay_names_the_option_that_allows_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from asgifuzz._cli.main import main

    entry = {
        "format": 1,
        "key": "I3",
        "status": "new",
        "case": json.loads(_user_case("user.Greedy").to_json()),
        "targets": {"middleware": {"Greedy": "user_code:Greedy"}},
    }
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(entry))
    none = ["--config", str(tmp_path / "none.toml")]
    assert main(["replay", str(path), *none]) == 2
    err = capsys.readouterr().err
    assert "field 'case.stack.layers[0].kind'" in err
    assert "--middleware 'Greedy=user_code:Greedy'" in err
    assert main(["replay", str(path), "--middleware", "user_code:Greedy", *none]) == 0


# Strategies ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(case=cases(middleware=[user_code.Stamp, user_code.Answer500]))
def test_every_stack_holds_some_user_middleware(case: Case) -> None:
    kinds = [la.kind for la in case.stack.layers]
    assert 1 <= sum(k in ("user.Stamp", "user.Answer500") for k in kinds) <= 3


@settings(max_examples=30, deadline=None)
@given(case=cases(middleware={"S": user_code.Stamp}, builtin=False))
def test_builtin_false_is_user_layers_only(case: Case) -> None:
    assert {la.kind for la in case.stack.layers} == {"user.S"}


@settings(max_examples=40, deadline=None)
@given(case=cases(app=user_code.lifespan_app, routes=["DELETE /gone"]))
def test_app_cases_request_its_routes(case: Case) -> None:
    assert (case.app, case.stack) == ("app", Stack())
    method, path = case.request.method, case.request.path
    assert any(
        method == m and routes.pattern(template).match(path)
        for m, template in _targets.app_target("app").routes
    )
    assert not re.search("[{}]", path)
    assert case.endpoint == Endpoint()


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="names no middleware"):
        cases(middleware=[])
    with pytest.raises(InvalidArgument, match="cannot import module"):
        cases(middleware=["nope_pkg:X"])
    with pytest.raises(InvalidArgument, match="not an ASGI app"):
        cases(app=user_code.Stamp)


# The driver and the oracles --------------------------------------------------------


def _app_case(path: str, method: str = "GET", **parts: object) -> Case:
    return Case(app="app", request=Request(method=method, path=path), **parts)  # type: ignore[arg-type]


def test_lifespan_runs_around_each_run_and_its_state_reaches_the_request() -> None:
    import asgifuzz

    _targets.allow_app(_targets.app_from_object(user_code.lifespan_app))
    user_code.EVENTS.clear()
    outcome = asgifuzz.run(_app_case("/state"), "trio")
    assert outcome.response.body == b"hello"
    assert user_code.EVENTS == ["startup", "shutdown"]
    _targets.allow_app(_targets.app_from_object(user_code.lifespan_app, lifespan=False))
    assert asgifuzz.run(_app_case("/state"), "asyncio").response.body == b"no state"


def test_an_app_without_lifespan_support_still_runs() -> None:
    import asgifuzz

    _targets.allow_app(_targets.app_from_object(user_code.raw_app))
    assert asgifuzz.run(_app_case("/"), "asyncio").response.body == b"raw"


def test_a_failing_startup_is_a_usage_error() -> None:
    import asgifuzz

    _targets.allow_app(_targets.app_from_object(user_code.failing_startup_app))
    with pytest.raises(UsageError, match="lifespan startup failed"):
        asgifuzz.run(_app_case("/"), "asyncio")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_app_mode_policies(backend: str) -> None:
    _targets.allow_app(_targets.app_from_object(user_code.lifespan_app))
    own_error = judge(_app_case("/error"), (backend,))
    assert own_error.outcomes[backend].escaped is not None
    assert not own_error.failed  # the app's own error: the server answers 500
    framework = judge(_app_case("/none"), (backend,))
    assert [v.key for v in framework.violations[backend]] == ["I1:TypeError"]
    body = (b"a", b"b")
    echo = _app_case("/echo", "POST")
    echo = replace(echo, request=replace(echo.request, body=body))
    assert not judge(echo, (backend,)).failed


def test_a_user_layer_that_eats_the_body_breaks_i3() -> None:
    _allow(user_code.Greedy)
    case = _user_case(
        "user.Greedy",
        endpoint=Endpoint(kind="echo"),
        request=Request(method="POST", body=(b"hi",)),
    )
    verdict = judge(case, ("asyncio",))
    # Starlette 1.x hands the endpoint b"" (I3); before 0.28 it waits forever (I4).
    assert [v.invariant for v in verdict.violations["asyncio"]] in (["I3"], ["I4"])


def test_a_user_layer_that_answers_an_exception_handles_it() -> None:
    _allow(user_code.Answer500)
    case = _user_case("user.Answer500", endpoint=Endpoint(kind="raise"))
    verdict = judge(case, ("asyncio",))
    assert verdict.outcomes["asyncio"].response.status == 500
    assert not verdict.failed


def test_a_user_layer_that_crashes_is_found_with_its_frames() -> None:
    _allow(user_code.Crash)
    verdict = judge(_user_case("user.Crash"), ("asyncio",))
    (violation,) = verdict.violations["asyncio"]
    assert violation.key == "I1:KeyError"
    # By qualified name: two BaseHTTPMiddleware subclasses' dispatch differ.
    assert violation.frames[-1] == "user_code.py:Crash.dispatch"
    assert violation.signature == "I1:KeyError@user_code.py:Crash.dispatch"


def test_failures_without_the_user_layers_are_not_theirs() -> None:
    # A Starlette bug that needs no user layer: on 1.10.0 BaseHTTPMiddleware
    # hides the disconnect from an endpoint polling is_disconnected() (I9).
    _allow(user_code.Stamp)
    case = _user_case(
        "user.Stamp",
        "bhm.passthrough",
        endpoint=Endpoint(kind="poll_disconnect"),
        client=Client(disconnect="checkpoints", at=3),
        server=Server(name="uvicorn"),
    )
    without = judge(replace(case, stack=Stack((Layer("bhm.passthrough"),))))
    verdict = judge(case)
    theirs = {v.key for vs in without.violations.values() for v in vs}
    elsewhere = {v.key for vs in verdict.elsewhere.values() for v in vs}
    assert elsewhere == theirs
    assert not {v.key for vs in verdict.violations.values() for v in vs} & theirs


# Configuration -------------------------------------------------------------------


def test_pyproject_configuration(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    assert load_config(path) == TargetConfig()
    path.write_text(
        '[tool.asgifuzz]\nmiddleware = ["user_code:Stamp"]\napp = "user_code:raw_app"\n'
        'routes = ["POST /x"]\nlifespan = false\nbuiltin = false\n'
    )
    config = load_config(path)
    assert config == TargetConfig(
        middleware=("user_code:Stamp",),
        app="user_code:raw_app",
        routes=("POST /x",),
        lifespan=False,
        builtin=False,
    )
    assert "--no-lifespan" in config.options()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.asgifuzz]\nmiddlewares = []\n", "unknown keys \\['middlewares'\\]"),
        ("[tool.asgifuzz]\nmiddleware = 'x:Y'\n", "must be a list of strings"),
        ("[tool.asgifuzz]\nlifespan = 'no'\n", "must be true or false"),
        ("[tool.asgifuzz]\napp = 3\n", "app must be a string"),
        ("[tool.asgifuzz\n", "cannot read it as TOML"),
    ],
)
def test_bad_pyproject_configuration(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--middleware", "nope_pkg.mw:Timing"], "cannot import module 'nope_pkg.mw'"),
        (
            ["--middleware", "user_code:Configurable(secrt='x')"],
            "rejected its arguments",
        ),
        (["--app", "user_code:lifespan_ap"], "did you mean"),
        (["--app", "user_code:raw_app", "--route", "GO /x"], "not a route"),
        (["--known", "no/such/dir"], "not a directory"),
    ],
)
def test_the_cli_says_what_is_wrong_in_one_line(
    option: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from asgifuzz._cli.main import main

    argv = ["fuzz", "--max-time", "1", "--no-database", "--progress", "off"]
    assert main([*argv, "--config", str(tmp_path / "none.toml"), *option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_the_cli_fuzzes_an_app_and_saves_what_it_finds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from asgifuzz._cli.main import main

    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.asgifuzz]\nmiddleware = ["user_code:Greedy"]\n')
    argv = ["fuzz", "--max-time", "3", "--no-database", "--progress", "off"]
    code = main([*argv, "--config", str(config), "--corpus", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "your code: --middleware user_code:Greedy" in out
    assert code == 1
    entries = [json.loads(p.read_text()) for p in (tmp_path / "c").glob("*.json")]
    assert any(
        e["targets"] == {"middleware": {"Greedy": "user_code:Greedy"}} for e in entries
    )


def test_an_endpoint_cancelled_before_its_next_poll_was_not_deaf() -> None:
    # The client leaves at once; the poller would look again after a second,
    # but the user's layer cancels it after half a second: no I9.
    _allow(user_code.Deadline)
    case = _user_case(
        "user.Deadline",
        endpoint=Endpoint(kind="poll_disconnect"),
        client=Client(disconnect="checkpoints", at=1),
    )
    verdict = judge(case)
    assert not verdict.failed, verdict.violations
    rec = verdict.outcomes["asyncio"].recorder
    endpoint = len(rec.boundaries) - 1
    assert [e.kind for e in rec.events if e.where == endpoint][-1] == "raise"


# Targets that are not ASGI apps: usage errors with the fix, before any case.


async def _app(scope: object, receive: object, send: object) -> None:
    """Any ASGI app."""


def test_asgi_problem_reads_the_signature() -> None:
    import os

    assert asgi_problem(_app) is None
    assert asgi_problem(lambda *args: None) is None  # takes anything
    assert asgi_problem(len) is not None
    assert "takes (command" in str(asgi_problem(os.system))
    assert asgi_problem(lambda: None) == "takes no arguments (an app factory?)"
    assert asgi_problem(int) == "is a class"
    assert asgi_problem(os) == "is a module"
    assert asgi_problem(3) == "is not callable (a int)"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--app", "os:system"], "takes (command"),
        (["--app", "user_code:Stamp"], "is a class, so it is not an ASGI app"),
        (
            ["--app", "user_code:make_app"],
            "looks like an app factory, not an app: call it with --app "
            "'user_code:make_app()'",
        ),
        (["--app", "user_code:make_app(1, 2, 3)"], "calling the app factory"),
        (["--app", "user_code:EVENTS()"], "cannot be called as an app factory"),
        (["--middleware", "user_code:NotASGI"], "returned <user_code.NotASGI"),
    ],
)
def test_a_target_that_is_not_asgi_is_a_usage_error(
    option: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from asgifuzz._cli.main import main

    argv = ["fuzz", "--max-time", "1", "--no-database", "--progress", "off"]
    assert main([*argv, "--config", str(tmp_path / "none.toml"), *option]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert message in err[0]
    assert "cases run" not in captured.out  # refused before the first case


def test_an_app_factory_call_with_literal_arguments_is_fuzzed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from asgifuzz._cli.main import main

    argv = ["fuzz", "--max-time", "1", "--no-database", "--progress", "off"]
    spec = "user_code:make_app(greeting='hi')"
    code = main([*argv, "--config", str(tmp_path / "none.toml"), "--app", spec])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert f"--app {shlex.quote(spec)}" in out  # the option that allows it again
    assert "cases run" in out
