"""What the user adds to every request: ``--header``, ``--cookie`` and a request
strategy (``--requests``, ``[tool.asgifuzz] requests``, ``given_cases(requests=)``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from asgifuzz._campaign.loop import strategy_for
from asgifuzz._cli import options
from asgifuzz._errors import UsageError
from asgifuzz._targets import specs as _targets
from asgifuzz._targets.config import TargetConfig, load_config
from asgifuzz._targets.extras import parse_cookie, parse_extras, parse_header
from asgifuzz.models import Case, Request
from asgifuzz.strategies import cases
from asgifuzz.strategies._user import user_requests

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """picky_code importable; what a test allows is forgotten after it."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))


def test_headers_and_cookies_are_parsed() -> None:
    assert parse_header("X-Api-Key:  secret ") == ("x-api-key", "secret")
    assert parse_header("x-empty:") == ("x-empty", "")
    assert parse_cookie(" session=abc=1 ") == "session=abc=1"


@pytest.mark.parametrize(
    ("headers", "cookies", "message"),
    [
        (["x-api-key secret"], [], "write it as 'name: value'"),
        (["bad name: v"], [], "write it as 'name: value'"),
        (["x: a\r\nb"], [], "no CR or LF"),
        (["x: " + "v" * 9000], [], "at most 8192"),
        ([], ["session"], "write it as 'name=value'"),
        ([], ["a=1; b=2"], "give each cookie its own --cookie"),
        ([], ["a=" + "v" * 3000, "b=" + "v" * 3000], "at most 4096"),
    ],
)
def test_bad_headers_and_cookies_say_how_to_write_them(
    headers: list[str], cookies: list[str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        parse_extras(headers, cookies)


def test_pyproject_and_command_line_add_up(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.asgifuzz]\nheaders = ["x-api-key: k"]\ncookies = ["a=1"]\n'
        'requests = "picky_code:api_requests"\n'
    )
    config = load_config(path)
    assert config == TargetConfig(
        headers=("x-api-key: k",), cookies=("a=1",), requests="picky_code:api_requests"
    )
    assert not config.empty
    args = argparse.Namespace(
        config=path, header=["x-b: 2"], cookie=["b=2"], requests=None
    )
    merged = options.config_from_args(args)
    assert merged.headers == ("x-api-key: k", "x-b: 2")
    assert merged.cookies == ("a=1", "b=2")
    assert merged.requests == "picky_code:api_requests"
    path.write_text('[tool.asgifuzz]\nheaders = ["nope"]\n')
    with pytest.raises(UsageError, match=r"\[tool.asgifuzz\].*'name: value'"):
        load_config(path)
    path.write_text("[tool.asgifuzz]\nrequests = 1\n")
    with pytest.raises(UsageError, match="requests must be a string"):
        load_config(path)


@settings(max_examples=30, database=None)
@given(st.data())
def test_every_drawn_request_gets_the_users_headers_and_cookies(
    data: st.DataObject,
) -> None:
    strategy = strategy_for(
        TargetConfig(headers=("Authorization: Bearer t",), cookies=("sid=9",))
    )
    assert strategy is not None  # no code of the user's: the built-in models
    case = data.draw(strategy)
    headers = case.request.headers
    assert [v for n, v in headers if n.lower() == "authorization"] == ["Bearer t"]
    jars = [v for n, v in headers if n == "cookie"]
    assert jars[0].startswith("sid=9")  # the first cookie header (of one or two)


def test_a_request_strategy_by_spec_or_object() -> None:
    drawn: list[Request] = []
    for requests in ("picky_code:api_requests", "picky_code:api_requests()"):

        @settings(max_examples=5, database=None)
        @given(cases(request=user_requests(requests)))
        def record(case: Case) -> None:
            drawn.append(case.request)

        record()
    assert drawn
    assert {(r.method, r.path) for r in drawn} == {("PUT", "/api")}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("picky_code:CookieCrash", "is type, not a Hypothesis strategy"),
        ("picky_code:_header", "calling it with no arguments failed"),
        ("picky_code:nope", "not found"),
    ],
)
def test_a_bad_request_strategy_is_refused(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        user_requests(spec)


def test_a_strategy_that_draws_no_request_is_refused_when_drawn() -> None:
    @settings(max_examples=1, database=None)
    @given(cases(request=user_requests("picky_code:not_requests")))
    def draw(case: Case) -> None: ...

    with pytest.raises(UsageError, match=r"must draw asgifuzz\.models\.Request"):
        draw()


def test_cases_refuse_a_bad_header() -> None:
    with pytest.raises(InvalidArgument, match="'name: value'"):
        cases(headers=["nope"])


def test_given_cases_takes_a_request_strategy() -> None:
    import asgifuzz

    seen: list[Request] = []

    @settings(max_examples=5, database=None)
    @asgifuzz.given_cases(
        middleware=["picky_code:KeyRequired"],
        builtin=False,
        requests="picky_code:api_requests",
        cookies=["sid=1"],
    )
    def test_key(case: Case) -> None:
        seen.append(case.request)
        asgifuzz.check(case)

    test_key()  # KeyRequired passes: every request has the key
    assert seen
    assert all(r.path == "/api" and ("cookie", "sid=1") in r.headers for r in seen)
    with pytest.raises(UsageError, match="not both"):
        asgifuzz.given_cases(request=st.just(Request()), requests="x:y")


def test_the_cli_adds_the_header_to_every_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from asgifuzz._cli.main import main

    argv = [
        *("fuzz", "--max-time", "2", "--no-database", "--progress", "off"),
        *("--no-builtin", "--config", str(tmp_path / "none.toml")),
        *("--middleware", "picky_code:KeyRequired", "--no-supervisor"),
    ]
    keys = {}
    for extra in ([], ["--header", "x-api-key: k"]):
        report = tmp_path / "out.json"
        main([*argv, *extra, "--json", str(report)])
        data = json.loads(report.read_text())
        keys[bool(extra)] = {f["key"] for f in data["findings"]} | {
            f"misconfigured: {m['raised']}" for m in data["misconfigured"]
        }
    capsys.readouterr()
    # Without the header it raises on every request: reported once, as a
    # likely misconfiguration (asgifuzz._campaign.misconfig), not as findings.
    assert any("PermissionError" in k for k in keys[False]), keys
    assert not any("PermissionError" in k for k in keys[True]), keys


def test_the_other_scopes_get_the_headers_and_cookies_too() -> None:
    seen: dict[str, list[tuple[tuple[str, str], ...]]] = {}

    @settings(max_examples=150, database=None)
    @given(cases(scopes="auto", headers=["x-api-key: k"], cookies=["sid=1"]))
    def draw(case: Case) -> None:
        got = case.websocket.handshake if case.scope == "websocket" else case.request
        # (a lifespan session is an http case with a lifespan around it)
        kind = "lifespan" if case.lifespan is not None else case.scope
        seen.setdefault(kind, []).append(got.headers)

    draw()
    assert set(seen) == {"http", "websocket", "lifespan"}
    for scope, drawn in seen.items():
        for headers in drawn:
            assert ("x-api-key", "k") in headers, scope
            assert any(n == "cookie" and v.startswith("sid=1") for n, v in headers)
