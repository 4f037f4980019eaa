"""The websocket session models and the case's ``scope`` field in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given

from asgifuzz._errors import CaseFormatError
from asgifuzz.models import Case, Server
from asgifuzz.models._parts import SERVERS
from asgifuzz.models._websocket import Handshake, Session, Step, WsEndpoint
from asgifuzz.strategies import websocket_cases

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
SESSION = Session(
    handshake=Handshake(
        path="/ws/chat", subprotocols=("chat", "v2"), headers=(("origin", "x"),)
    ),
    endpoint=WsEndpoint("broadcast", subprotocol="chat", count=2, code=4001),
    steps=(
        Step("text", "héllo"),
        Step("bytes", b"\x00\xff", after=1),
        Step("close", code=4000, reason="bye", after=2),
    ),
)


def test_an_http_case_writes_no_scope_so_old_hashes_stay() -> None:
    data = json.loads(Case().to_json())
    assert "scope" not in data
    assert "websocket" not in data
    # Every shipped corpus case reads back to the very text it was saved as
    # (an HTTP one with no scope written).
    checked = 0
    for path in sorted(CORPUS.glob("*.json")):
        entry = json.loads(path.read_text())
        if "case" in entry:
            case = Case.from_json(json.dumps(entry["case"]))
            assert case.scope == entry["case"].get("scope", "http")
            assert json.loads(case.to_json()) == entry["case"], path
            checked += 1
    assert checked > 0


def test_a_websocket_case_round_trips() -> None:
    case = Case(scope="websocket", websocket=SESSION)
    data = json.loads(case.to_json())
    assert data["scope"] == "websocket"
    assert data["websocket"]["steps"][1]["payload"] == "\x00\xff"
    assert Case.from_json(case.to_json()) == case


@given(websocket_cases())
def test_every_drawn_websocket_case_round_trips(case: Case) -> None:
    assert case.websocket.problem() == ""
    assert Case.from_json(case.to_json()) == case


def _with(**websocket: object) -> str:
    data = json.loads(Case(scope="websocket", websocket=SESSION).to_json())
    data["websocket"].update(websocket)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (_with(steps=[{"kind": "close"}, {"kind": "text"}]), "'websocket'"),
        (_with(steps=[{"kind": "text", "after": -1}]), "'websocket'"),
        (_with(steps=[{"kind": "close", "code": 1006}]), "'websocket'"),
        (_with(steps=[{"kind": "text"}, {"kind": "drop", "after": -1}]), "'websocket'"),
        (_with(steps=[{"kind": "shout"}]), "websocket.steps[0].kind"),
        (_with(steps=[{"kind": "bytes", "payload": "\u0100"}]), "steps[0].payload"),
        (_with(steps="x"), "websocket.steps"),
        (
            _with(
                steps=[
                    {"kind": "bytes", "payload": [{"repeat": "a", "times": 2**20 + 1}]}
                ]
            ),
            "steps[0].payload",
        ),
        (_with(endpoint={"kind": "sing"}), "websocket.endpoint.kind"),
        (_with(endpoint={"code": 999}), "websocket.endpoint.code"),
        (_with(handshake={"path": "ws"}), "websocket.handshake.path"),
        (_with(handshake={"subprotocols": [1]}), "handshake.subprotocols"),
        (_with(handshake={"headers": [["a"]]}), "websocket.handshake.headers"),
        (_with(handshake={"headers": "a"}), "websocket.handshake.headers"),
        (_with(extra=1), "'websocket'"),
    ],
)
def test_a_bad_session_is_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(CaseFormatError, match=field.replace("[", r"\[")):
        Case.from_json(text)


def test_the_scope_and_the_server_are_checked() -> None:
    data = json.loads(Case(scope="websocket", websocket=SESSION).to_json())
    with pytest.raises(CaseFormatError, match="scope"):
        Case.from_json(json.dumps({**data, "scope": "carrier-pigeon"}))
    with pytest.raises(CaseFormatError, match='add "scope": "websocket"'):
        Case.from_json(json.dumps({**data, "scope": "http"}))
    # Every server profile runs websocket cases (daphne's and granian's too).
    for name in SERVERS:
        case = Case(scope="websocket", server=Server(name=name), websocket=SESSION)
        assert Case.from_json(case.to_json()) == case


def test_problem_names_a_payload_of_the_wrong_kind() -> None:
    assert "does not match" in Session(steps=(Step("text", b"x"),)).problem()
