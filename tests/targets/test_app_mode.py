"""App mode for real apps: typed path parameters, excluded routes, lifespan
state, code that calls asyncio directly, and specs that need objects."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import user_code
from hypothesis import given, settings
from hypothesis import strategies as st

import asgifuzz
from asgifuzz._driver.lifespan import Lifespan
from asgifuzz._errors import UsageError
from asgifuzz._targets import routes
from asgifuzz._targets import specs as _targets
from asgifuzz._targets.asyncio_use import (
    asyncio_calls,
    calls_asyncio,
    only_on_trio,
    quiet_on_trio,
)
from asgifuzz._targets.config import TargetConfig, load_config
from asgifuzz.models import Case, Request
from asgifuzz.strategies._user import app_requests, param_values, route_paths

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))
    monkeypatch.setattr(_targets, "_APPS", dict(_targets._APPS))


def _fastapi() -> object:
    pytest.importorskip("fastapi")
    import fastapi_code

    return fastapi_code


# Path parameters ------------------------------------------------------------------


def test_routes_are_templates_by_convertor() -> None:
    target = _targets.app_from_object(user_code.typed_app)
    assert set(target.routes) >= {
        ("GET", "/items/{item_id:int}"),
        ("GET", "/files/{path:path}"),
        ("GET", "/u/{uid:uuid}"),
        ("GET", "/price/{x:float}"),
        ("GET", "/users/{name:str}"),
        ("HEAD", "/health"),
    }


def test_fastapi_annotations_decide_the_parameter_kind() -> None:
    fastapi_code = _fastapi()
    target = _targets.app_from_object(fastapi_code.app)  # type: ignore[attr-defined]
    assert set(target.routes) == {
        ("GET", "/items/{item_id:int}"),
        ("GET", "/sized/{n:int=3..9}"),
        ("GET", "/paint/{color:choice=red|green}/{finish:choice=matte|gloss}"),
        ("GET", "/orders/{order:uuid}/{ratio:float}"),
        ("GET", "/health"),
    }


def test_templates_round_trip_their_parameters() -> None:
    odd = routes.Param("c", "choice", choices=("a|b", "x}y", "é"))
    template = "/t/" + routes._encode(odd) + "/{n:int=-3..}/{f:float=..9}"
    assert routes.params(template) == [
        odd,
        routes.Param("n", "int", -3, None),
        routes.Param("f", "float", None, 9),
    ]
    assert routes.fill(template, {"c": "a|b", "n": "-1", "f": "2.0"}) == (
        "/t/a|b/-1/2.0"
    )
    assert routes.pattern(template).match("/t/x/1/2")
    assert not routes.pattern(template).match("/t/x/1")
    assert routes.params("/a/{x:nonsense}") == [routes.Param("x", "str")]


@pytest.mark.parametrize(
    ("param", "valid"),
    [
        (routes.Param("i", "int", 3, 9), lambda v: 3 <= int(v) <= 9),
        (routes.Param("i", "int", None, -5), lambda v: int(v) <= -5),
        (routes.Param("f", "float", 1, None), lambda v: float(v) >= 1),
        (routes.Param("f", "float", None, 2), lambda v: float(v) <= 2),
        (routes.Param("c", "choice", choices=("a", "b")), lambda v: v in "ab"),
        (routes.Param("r", "regex", regex="[0-9]{4}-x"), lambda v: len(v) == 6),
        (routes.Param("p", "path"), lambda v: all(v.split("/"))),
        (routes.Param("s", "str"), lambda v: v and "/" not in v and v.isascii()),
    ],
)
def test_drawn_values_are_valid(param: routes.Param, valid: object) -> None:
    @settings(max_examples=60, database=None)
    @given(param_values(param))
    def check(value: str) -> None:
        assert valid(value), value  # type: ignore[operator]

    check()


def test_values_shrink_to_the_simplest() -> None:
    from hypothesis import find

    assert find(param_values(routes.Param("i", "int")), lambda _: True) == "0"
    assert find(param_values(routes.Param("i", "int", 3, 9)), lambda _: True) == "3"
    assert find(route_paths((("GET", "/i/{i:int}"),)), lambda _: True) == (
        "GET",
        "/i/0",
    )


def _run_all(target: _targets.AppTarget, backend: str, n: int) -> list[int]:
    """Status codes of ``n`` drawn requests to ``target``, run on ``backend``."""
    statuses: list[int] = []

    @settings(max_examples=n, database=None, deadline=None, derandomize=True)
    @given(app_requests(target.routes))
    def one(request: Request) -> None:
        outcome = asgifuzz.run(Case(app=target.name, request=request), backend)
        assert outcome.response is not None
        assert outcome.escaped is None
        statuses.append(outcome.response.status or 0)
        assert outcome.response.status == 200, (request, outcome.response.body)

    one()
    return statuses


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_drawn_requests_hit_typed_routes_with_valid_values(backend: str) -> None:
    target = _targets.allow_app(
        _targets.app_from_object(user_code.typed_app, exclude=["/health"])
    )
    user_code.SEEN.clear()
    _run_all(target, backend, 60 if backend == "asyncio" else 20)
    import uuid

    if backend == "asyncio":  # every kind came up
        assert {kind for _, kind in user_code.SEEN} == {int, str, uuid.UUID, float}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fastapi_requests_are_valid_for_the_annotations(backend: str) -> None:
    fastapi_code = _fastapi()
    target = _targets.allow_app(
        _targets.app_from_object(fastapi_code.app)  # type: ignore[attr-defined]
    )
    fastapi_code.SEEN.clear()  # type: ignore[attr-defined]
    assert set(_run_all(target, backend, 200 if backend == "asyncio" else 15)) == {200}
    names = {name for name, _ in fastapi_code.SEEN}  # type: ignore[attr-defined]
    if backend == "asyncio":
        assert names == {"item_id", "n", "color", "order"}


# Excluded routes ------------------------------------------------------------------


def test_fastapi_docs_are_excluded_by_default_and_said() -> None:
    fastapi_code = _fastapi()
    target = _targets.app_from_object(fastapi_code.app)  # type: ignore[attr-defined]
    paths = {path for _, path in target.routes}
    assert not paths & {"/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
    (note,) = target.notes
    assert "GET,HEAD /docs" in note
    assert "GET,HEAD /openapi.json" in note
    assert "excluded by default" in note
    assert "--route" in note
    back = _targets.app_from_object(
        fastapi_code.app,  # type: ignore[attr-defined]
        routes=["GET /docs"],
    )
    assert ("GET", "/docs") in back.routes
    assert ("GET", "/redoc") not in back.routes
    plain = _targets.app_from_object(user_code.typed_app)
    assert plain.notes == ()


def test_exclude_route() -> None:
    app = user_code.typed_app
    target = _targets.app_from_object(app, exclude=["GET /health"])
    assert not any(path == "/health" for _, path in target.routes)  # HEAD too
    assert target.notes == (
        "not requested: GET,HEAD /health (--exclude-route 'GET /health')",
    )
    head = _targets.app_from_object(app, exclude=["HEAD /health"])
    assert ("GET", "/health") in head.routes
    assert ("HEAD", "/health") not in head.routes
    wild = _targets.app_from_object(app, exclude=["/u*", "/items/{item_id:int}"])
    assert {p for _, p in wild.routes} == {
        "/files/{path:path}",
        "/price/{x:float}",
        "/health",
    }
    with pytest.raises(UsageError, match=r"matches no route.*GET,HEAD /health"):
        _targets.app_from_object(app, exclude=["GET /helth"])
    with pytest.raises(UsageError, match="not a route to exclude"):
        _targets.app_from_object(app, exclude=["health"])
    with pytest.raises(UsageError, match="every route of the app is excluded"):
        _targets.app_from_object(app, exclude=["/*"])
    kept = _targets.app_from_object(app, exclude=["/*"], routes=["POST /x"])
    assert kept.routes == (("POST", "/x"),)
    from hypothesis.errors import InvalidArgument

    from asgifuzz.strategies._user import allow_app

    api = allow_app(app, exclude_routes=["/health"])
    assert not any(path == "/health" for _, path in api.routes)
    with pytest.raises(InvalidArgument, match="matches no route"):
        allow_app(app, exclude_routes=["/nope"])


def test_exclude_routes_in_pyproject_and_on_the_command_line(tmp_path: Path) -> None:
    from asgifuzz._cli.main import parser
    from asgifuzz._cli.options import config_from_args

    toml = tmp_path / "pyproject.toml"
    toml.write_text(
        '[tool.asgifuzz]\napp = "user_code:typed_app"\nexclude_routes = ["/u/*"]\n'
    )
    assert load_config(toml).exclude_routes == ("/u/*",)
    args = parser("fuzz").parse_args(
        ["fuzz", "--config", str(toml), "--exclude-route", "GET /health"]
    )
    config = config_from_args(args)
    assert config.exclude_routes == ("/u/*", "GET /health")
    assert "--exclude-route '/u/*' --exclude-route 'GET /health'" in config.options()
    assert [n.split(" (")[0] for n in config.notes()] == [
        "not requested: GET,HEAD /u/{uid:uuid}, GET,HEAD /health"
    ]
    toml.write_text('[tool.asgifuzz]\nexclude_routes = "/health"\n')
    with pytest.raises(UsageError, match="exclude_routes must be a list"):
        load_config(toml)


def test_the_cli_says_which_routes_it_leaves_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _fastapi()
    from asgifuzz._cli.main import main

    argv = ["fuzz", "--max-time", "1", "--no-database", "--progress", "off"]
    argv += ["--config", str(tmp_path / "none.toml"), "--backend", "asyncio"]
    code = main([*argv, "--app", "fastapi_code:app", "--exclude-route", "GET /health"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "asgifuzz: not requested: GET,HEAD /openapi.json" in out
    assert "(FastAPI's docs and OpenAPI schema, excluded by default" in out
    assert "asgifuzz: not requested: GET /health (--exclude-route 'GET /health')" in out


# Lifespan state -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_state_made_at_startup_is_what_the_requests_use(backend: str) -> None:
    _targets.allow_app(_targets.app_from_object(user_code.state_app))
    for _ in range(2):  # a fresh startup (and pool) for every run
        outcome = asgifuzz.run(Case(app="app", request=Request(path="/pool")), backend)
        assert outcome.response is not None
        assert (outcome.response.status, outcome.response.body) == (200, b"shop:1")
        notes = [e.detail for e in outcome.recorder.events if e.kind == "note"]
        assert "lifespan startup complete" in notes


def test_each_request_gets_a_shallow_copy_of_the_state() -> None:
    async def main() -> None:  # anyio 3 makes a Lifespan's events in a loop only
        lifespan = Lifespan()
        lifespan.state["pool"] = pool = object()
        first = lifespan.request_state()
        first["mine"] = 1
        assert lifespan.request_state() == {"pool": pool}
        assert first["pool"] is pool

    asyncio.run(main())


def test_a_startup_that_never_completes_is_said() -> None:
    async def main() -> None:  # anyio 3 makes a Lifespan's events in a loop only
        lifespan = Lifespan()
        assert "returned without completing startup" in lifespan.startup_note
        await lifespan.send({"type": "lifespan.startup.complete"})
        assert lifespan.startup_note == "lifespan startup complete"

    asyncio.run(main())
    _targets.allow_app(
        _targets.app_from_object(user_code.HttpOnly(user_code.state_app))
    )
    outcome = asgifuzz.run(Case(app="app", request=Request(path="/pool")), "asyncio")
    notes = [e.detail for e in outcome.recorder.events if e.kind == "note"]
    assert any("returned without completing startup" in n for n in notes)


# Code that calls asyncio directly -------------------------------------------------


def test_asyncio_calls_in_source() -> None:
    source = (
        "import asyncio as aio\nimport anyio\nfrom asyncio import Queue, "
        "CancelledError\n\nasync def f():\n    await anyio.sleep(1)\n"
        "    loop = aio.get_event_loop()\n    try:\n        await aio.sleep(0)\n"
        "    except aio.CancelledError:\n        pass\n"
    )
    assert asyncio_calls(source, "/elsewhere/m.py") == [
        "/elsewhere/m.py:3 (from asyncio import Queue)",
        "/elsewhere/m.py:7 (asyncio.get_event_loop)",
        "/elsewhere/m.py:9 (asyncio.sleep)",
    ]
    clean = "import anyio\nasync def f():\n    await anyio.sleep(1)\n"
    assert asyncio_calls(clean, "m.py") == []
    assert asyncio_calls("def (:", "m.py") == []


def test_calls_asyncio_finds_the_apps_direct_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(TESTS)
    target = _targets.load_app("asyncio_code:app")
    places = calls_asyncio(target)
    assert places == ["asyncio_code.py:14 (asyncio.sleep)"]
    assert "asyncio_code.py:14 (asyncio.sleep)" in only_on_trio(places)
    assert "try --backend asyncio" in only_on_trio(places)
    assert only_on_trio([]) == "only on trio"
    clean = _targets.app_from_object(user_code.lifespan_app)
    assert calls_asyncio(clean) == []
    assert calls_asyncio(_targets.middleware_from_object(user_code.Stamp)) == []
    assert "asyncio_code" in sys.modules


def test_an_app_that_fails_quietly_on_trio_is_said() -> None:
    places = ["main.py:3 (asyncio.sleep)"]
    counts = {"trio:app-exception": 9, "asyncio:app-exception": 1}
    line = quiet_on_trio(counts, places)
    assert line is not None
    assert "raised in 9 runs on trio (1 on asyncio)" in line
    assert "main.py:3 (asyncio.sleep)" in line
    assert quiet_on_trio(counts, []) is None
    assert (
        quiet_on_trio({"trio:app-exception": 1, "asyncio:app-exception": 1}, places)
        is None
    )


def test_asyncio_code_fails_on_trio_as_the_hint_says() -> None:
    import asyncio_code

    _targets.allow_app(_targets.app_from_object(asyncio_code.app))
    case = Case(app="app", request=Request(path="/sleepy"))
    assert asgifuzz.run(case, "asyncio").escaped is None
    assert asgifuzz.run(case, "trio").escaped is not None


# Specs that need objects ----------------------------------------------------------


def test_a_non_literal_argument_shows_the_factory_pattern() -> None:
    with pytest.raises(UsageError) as info:
        _targets.parse_spec("otel.mw:Tracing(provider=Provider(), n=1)", "--middleware")
    lines = str(info.value).splitlines()
    assert "the argument provider=Provider() is not a Python literal" in lines[0]
    assert "never evaluated" in lines[0]
    assert "a tracer provider" in lines[0]
    assert lines[1:] == [
        "    # fuzz_targets.py, beside pyproject.toml: from otel.mw import Tracing",
        "    def fuzzed(app): return Tracing(app, provider=Provider(), n=1)",
        "and pass --middleware fuzz_targets:fuzzed",
    ]
    with pytest.raises(UsageError) as info:
        _targets.parse_spec("main:create_app(Client())", "--app")
    assert str(info.value).splitlines()[2:] == [
        "    def fuzz_app(): return create_app(Client())",
        "and pass --app 'fuzz_targets:fuzz_app()'",
    ]


def test_a_middleware_factory_gives_a_middleware_its_objects() -> None:
    target = _targets.load_middleware("user_code:traced")
    made = target.wrap(user_code.raw_app)
    assert isinstance(made, user_code.Configurable)
    assert made.level == 2
    assert target.kind == "user.traced"
    assert TargetConfig(middleware=("user_code:traced",)).allow()[0] == [target]


@given(st.data())
@settings(max_examples=5, database=None)
def test_app_cases_use_templates(data: st.DataObject) -> None:
    from asgifuzz.strategies import cases

    case = data.draw(cases(app=user_code.typed_app))
    assert any(
        m == case.request.method and routes.pattern(t).match(case.request.path)
        for m, t in _targets.app_target("app").routes
    )


def test_the_summary_says_why_asyncio_code_fails_quietly_on_trio(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from asgifuzz._cli.main import main

    argv = ["fuzz", "--max-time", "2", "--no-database", "--progress", "off"]
    none = ["--config", str(tmp_path / "none.toml")]
    assert main([*argv, *none, "--app", "asyncio_code:app"]) == 0
    out = capsys.readouterr().out
    assert "asgifuzz: note: the app raised in" in out
    assert "asyncio_code.py:14 (asyncio.sleep)" in out
    assert "try --backend asyncio" in out
    assert main([*argv, *none, "--app", "user_code:make_app()"]) in (0, 1)
    assert "note: the app raised" not in capsys.readouterr().out
