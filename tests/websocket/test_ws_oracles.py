"""W1-W5: each fires on a hand-built bad transcript and stays quiet on a good one."""

from __future__ import annotations

from typing import Any

import pytest

from asgifuzz._driver.ws_drive import WsOutcome
from asgifuzz._oracles.facts import Facts, facts
from asgifuzz._oracles.registry import judge_outcome
from asgifuzz._oracles.verdict import judge
from asgifuzz._oracles.websocket import clean_end, closes, frames, sequences
from asgifuzz.models import Case, Layer, Stack
from asgifuzz.models._record import Recorder
from asgifuzz.models._websocket import Handshake, Session

CASE = Case(
    scope="websocket",
    stack=Stack(layers=(Layer("ws.passthrough"),)),
    websocket=Session(handshake=Handshake(subprotocols=("chat",))),
)
CONNECT = {"type": "websocket.connect"}
ACCEPT = {"type": "websocket.accept"}
HI = {"type": "websocket.receive", "text": "hi"}
ECHO = {"type": "websocket.send", "text": "hi"}
BYE = {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}
CLOSE = {"type": "websocket.close", "code": 4002, "reason": "done"}


def _good(where: int) -> list[tuple[int, str, dict[str, Any]]]:
    """One session as boundary ``where`` sees it: connect, accept, a frame and
    its echo, the client's close."""
    return [
        (where, "receive", CONNECT),
        (where, "send", ACCEPT),
        (where, "receive", HI),
        (where, "send", ECHO),
        (where, "receive", BYE),
    ]


def transcript(
    events: list[tuple[int, str, dict[str, Any]]],
    *,
    hung: bool = False,
    escaped: BaseException | None = None,
    left: bool = True,
) -> Facts:
    """The facts of a run made by hand: ``(boundary, kind, message)`` events."""
    rec = Recorder(boundaries=["layer 0 (ws.passthrough)", "endpoint"])
    if left:
        rec.disconnected = rec.note("client leaves (close 4001)")
    for where, kind, message in events:
        rec.log(where, kind, message)
    outcome = WsOutcome(case=CASE, backend="asyncio", recorder=rec)
    outcome.hung, outcome.returned, outcome.escaped = hung, not hung, escaped
    return facts(outcome)


GOOD = transcript([*_good(0), *_good(1)])


def test_a_correct_session_breaks_nothing() -> None:
    assert sequences(GOOD) == frames(GOOD) == closes(GOOD) == clean_end(GOOD) == []
    assert judge_outcome(GOOD.outcome) == []


@pytest.mark.parametrize(
    ("sent", "tag"),
    [
        ([ECHO], "order"),  # a frame before the accept
        ([ACCEPT, CLOSE, ECHO], "after-close"),
        ([ACCEPT, {"type": "websocket.close", "code": 1006}], "code"),
        ([ACCEPT, {"type": "websocket.close", "reason": "x" * 124}], "reason"),
        ([{"type": "websocket.close", "reason": [{"loc": "path"}]}], "reason"),
        ([{"type": "websocket.accept", "subprotocol": "v9"}], "subprotocol"),
        ([ACCEPT, {"type": "websocket.send"}], "frame"),
        ([{"type": "http.response.start", "status": 200}], "type"),
        (
            [
                {"type": "websocket.http.response.start", "status": 403},
                {"type": "websocket.http.response.body", "body": b"no"},
                CLOSE,
            ],
            "after-close",
        ),
    ],
)
def test_w1_fires_on_an_invalid_send_sequence(
    sent: list[dict[str, Any]], tag: str
) -> None:
    f = transcript([(1, "receive", CONNECT), *((1, "send", m) for m in sent)])
    found = sequences(f)
    assert [v.tag for v in found] == [tag], found
    assert "endpoint sent" in found[0].message


def test_w1_fires_on_an_invalid_receive_sequence() -> None:
    f = transcript([(0, "receive", HI), (0, "receive", BYE), (0, "receive", HI)])
    assert [v.tag for v in sequences(f)] == ["connect", "after-disconnect"]


def test_w2_fires_on_a_dropped_client_frame_and_a_dropped_echo() -> None:
    inner = [e for e in _good(1) if e[2] is not HI]
    found = frames(transcript([*_good(0), *inner]))
    assert [v.tag for v in found] == ["client"]
    assert "['hi'] reached the endpoint as []" in found[0].message
    outer = [e for e in _good(0) if e[2] is not ECHO]
    found = frames(transcript([*outer, *_good(1)]))
    assert [v.tag for v in found] == ["endpoint"]
    assert "['hi'] reached the server as []" in found[0].message


def test_w3_fires_on_a_changed_close_and_a_lost_disconnect() -> None:
    swallowed = transcript(
        [
            (1, "send", ACCEPT),
            (1, "send", CLOSE),
            (0, "send", ACCEPT),
            (0, "send", {"type": "websocket.close"}),
        ]
    )
    found = closes(swallowed)
    assert [v.tag for v in found] == ["server"]
    assert "(4002, 'done') arrived as (1000, '')" in found[0].message
    lost = transcript([*_good(0), *(e for e in _good(1) if e[2] is not BYE)])
    assert [v.tag for v in closes(lost)] == ["endpoint"]
    intact = transcript([(1, "send", CLOSE), (0, "send", CLOSE)])
    assert closes(intact) == []


def test_w4_fires_on_a_hang_and_on_a_foreign_exception() -> None:
    assert [v.tag for v in clean_end(transcript(_good(0), hung=True))] == ["hang"]
    found = clean_end(transcript(_good(0), escaped=KeyError("text")))
    assert [v.tag for v in found] == ["KeyError"]
    assert "after the client left" in found[0].message
    early = clean_end(transcript(_good(0), escaped=KeyError("text"), left=False))
    assert "while the client was connected" in early[0].message


class WebSocketDisconnect(Exception):
    """Stands for Starlette's signal (W4 knows it by name)."""


def test_w4_takes_the_disconnect_signal_after_the_client_left_only() -> None:
    assert clean_end(transcript(_good(0), escaped=WebSocketDisconnect())) == []
    assert clean_end(transcript(_good(0), escaped=ConnectionResetError())) == []
    early = clean_end(transcript(_good(0), escaped=WebSocketDisconnect(), left=False))
    assert [v.tag for v in early] == ["WebSocketDisconnect"]


def test_w5_reports_a_disagreement_of_the_backends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The module whose name verdict.judge calls, to stand in for one backend.
    import asgifuzz._oracles.registry as registry
    import asgifuzz._oracles.verdict as verdict

    real = registry.judge_outcome

    def asyncio_only(outcome: Any) -> list[Any]:
        found = real(outcome)
        if outcome.backend == "asyncio":
            found += sequences(transcript([(0, "send", ECHO)]))
        return found

    monkeypatch.setattr(verdict, "judge_outcome", asyncio_only)
    v = judge(CASE)
    assert [x.invariant for x in v.violations["both"]] == ["W5"]
    assert [x.key for x in v.violations["asyncio"]] == ["W1:order"]
    assert v.violations["trio"] == []
