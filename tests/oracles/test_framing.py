"""I11, the response's framing: each rule fails on a hand-built transcript and
passes on a correct one; real stacks of every layer kind stay quiet; the
strategies reach what it judges."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, settings
from test_oracles import keys, outcome

from asgifuzz._driver.runner import run
from asgifuzz._oracles.registry import INVARIANTS, judge_outcome
from asgifuzz._targets.specs import MiddlewareTarget, allow_middleware
from asgifuzz._types import ASGIApp, Message, Receive, Scope, Send
from asgifuzz.models import LAYER_KINDS, Case, Endpoint, Layer, Request, Stack
from asgifuzz.strategies import cases


def start(status: int = 200, *lengths: bytes) -> dict[str, Any]:
    headers = [(b"content-type", b"text/plain")]
    headers += [(b"content-length", v) for v in lengths]
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes = b"", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def sent(*messages: dict[str, Any], where: int = 0) -> list[Any]:
    return [(where, "send", m) for m in messages]


def framing_keys(
    *messages: dict[str, Any], method: str = "GET", **fields: Any
) -> list[str]:
    case = Case(request=Request(method=method))
    o = outcome(case, events=sent(*messages), **fields)
    return [k for k in keys(o) if k.startswith("I11")]


def test_i11_is_registered_with_its_tags() -> None:
    inv = INVARIANTS["I11"]
    assert inv.tags == ("no-body", "content-length")
    ids = list(INVARIANTS)
    # After I1-I9 (the lifespan and extension invariants follow it); I10
    # reads it, so comes last.
    assert ids.index("I11") == 9
    assert ids[-1] == "I10"
    assert "I11" in INVARIANTS["I10"].needs


@pytest.mark.parametrize("status", [204, 304, 103])
def test_no_body_status_with_body_bytes_fails(status: int) -> None:
    assert framing_keys(start(status), body(b"\x1f\x8b")) == ["I11:no-body"]
    assert framing_keys(start(status), body(b"", True), body(b"x")) == ["I11:no-body"]


@pytest.mark.parametrize("status", [204, 304, 103])
def test_no_body_status_without_body_bytes_passes(status: int) -> None:
    assert framing_keys(start(status), body()) == []
    assert framing_keys(start(status), body(b"", True), body()) == []


def test_the_message_names_the_status_the_rfc_and_the_bytes() -> None:
    case = Case(request=Request())
    o = outcome(case, events=sent(start(204), body(b"12345")))
    (v,) = [v for v in judge_outcome(o) if v.invariant == "I11"]
    assert "5 body bytes with status 204" in v.message
    assert "RFC 9110 §6.4.1, §15.3.5" in v.message
    assert "first sent by app" in v.message


def test_a_declared_length_on_204_fails_and_zero_passes() -> None:
    assert framing_keys(start(204, b"20"), body()) == ["I11:no-body"]
    assert framing_keys(start(204, b"0"), body()) == []
    # A 304 may carry the length of the 200 it stands for (RFC 9110 §8.6).
    assert framing_keys(start(304, b"20"), body()) == []


def test_head_body_bytes_are_the_servers_to_drop() -> None:
    # Starlette sends the GET body on HEAD; uvicorn and hypercorn drop it.
    assert framing_keys(start(200, b"5"), body(b"hello"), method="HEAD") == []
    assert framing_keys(start(204), body(b"hello"), method="HEAD") == []
    # Its content-length is GET's, unknown here: header-only HEAD passes too.
    assert framing_keys(start(200, b"5"), body(), method="HEAD") == []
    # But a 204 still declares no content, whatever the method.
    assert framing_keys(start(204, b"5"), body(), method="HEAD") == ["I11:no-body"]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ((start(200, b"2"), body(b"ok")), []),
        ((start(200), body(b"ok")), []),
        ((start(200, b"2", b"2"), body(b"ok")), []),
        ((start(200, b"5"), body(b"ok")), ["I11:content-length"]),
        ((start(200, b"1"), body(b"o", True), body(b"k")), ["I11:content-length"]),
        ((start(200, b"2", b"3"), body(b"ok")), ["I11:content-length"]),
        ((start(200, b"two"), body(b"ok")), ["I11:content-length"]),
    ],
)
def test_content_length_matches_the_bytes_sent(
    messages: tuple[dict[str, Any], ...], expected: list[str]
) -> None:
    assert framing_keys(*messages) == expected


def test_content_length_is_judged_on_complete_responses_only() -> None:
    # An unfinished stream is I1's to judge, and a client that left is owed
    # nothing (policy).
    assert framing_keys(start(200, b"5"), body(b"ok", True)) == []
    cut = framing_keys(start(204), body(b"ok"), disconnected=1, response_complete=3)
    assert cut == []


def test_the_message_names_the_layer_that_broke_it() -> None:
    # The endpoint (boundary 1) sent a right length; the app (boundary 0) sent
    # more bytes under it.
    events = [
        *sent(start(200, b"2"), body(b"ok"), where=1),
        *sent(start(200, b"2"), body(b"okok"), where=0),
    ]
    (v,) = [v for v in judge_outcome(outcome(events=events)) if v.invariant == "I11"]
    assert v.key == "I11:content-length"
    assert "content-length: 2 but 4 body bytes" in v.message
    assert "first sent by app, where endpoint below it sent status 200, 2 body" in (
        v.message
    )
    # When the endpoint itself breaks it, the endpoint is named.
    events = [*sent(start(200, b"3"), body(b"ok"), where=1)]
    events += sent(start(200, b"3"), body(b"ok"))
    (v,) = [v for v in judge_outcome(outcome(events=events)) if v.invariant == "I11"]
    assert "first sent by endpoint" in v.message


# Real runs ------------------------------------------------------------------


class KeepsLengthAddsBytes:
    """A layer that appends to the body and keeps the old content-length."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def appending(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get(
                "more_body", False
            ):
                message = {**message, "body": message.get("body", b"") + b"!"}
            await send(message)

        await self.app(scope, receive, appending)


def test_a_layer_that_breaks_the_length_is_named(backend: str) -> None:
    allow_middleware(MiddlewareTarget("KeepsLengthAddsBytes", KeepsLengthAddsBytes))
    layer = Layer("user.KeepsLengthAddsBytes")
    for method, status, expected in [
        ("GET", 200, ["I11:content-length"]),
        ("GET", 204, ["I11:no-body"]),
        ("HEAD", 200, []),
    ]:
        kind = "plain" if status == 200 else "empty"
        case = Case(
            stack=Stack((layer,)),
            endpoint=Endpoint(kind=kind, status=status),
            request=Request(method=method),
        )
        found = [v for v in judge_outcome(run(case, backend)) if v.invariant == "I11"]
        assert [v.key for v in found] == expected, (method, status)
        for v in found:
            assert "first sent by layer 0 (user.KeepsLengthAddsBytes)" in v.message


def _layer(kind: str) -> Layer:
    # GZip compresses only what reaches minimum_size (the default, 500): with
    # minimum_size=0 it gzips an empty 204/304 body (see the report).
    return Layer(kind, options={"minimum_size": 500} if kind.endswith("gzip") else {})


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_every_layer_kind_frames_head_and_no_body_statuses(
    kind: str, backend: str
) -> None:
    """No false alarm: HEAD and the no-content statuses through each layer kind."""
    for method, endpoint in [
        ("GET", Endpoint(kind="empty", status=204)),
        ("GET", Endpoint(kind="empty", status=304)),
        ("HEAD", Endpoint(kind="empty", status=204)),
        ("HEAD", Endpoint()),
        ("HEAD", Endpoint(kind="stream", chunks=2)),
        ("GET", Endpoint()),
        ("GET", Endpoint(kind="stream", chunks=3)),
    ]:
        for mode in ("starlette", "wrap"):
            case = Case(
                stack=Stack((_layer(kind), Layer("asgi.passthrough")), mode),
                endpoint=endpoint,
                request=Request(method=method, headers=(("accept-encoding", "gzip"),)),
            )
            found = [
                v.message
                for v in judge_outcome(run(case, backend))
                if v.invariant == "I11"
            ]
            assert found == [], (method, endpoint, mode)


# Found, not shrunk: reaching it is the point.
_FIND = settings(
    max_examples=20_000,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize(
    "condition",
    [
        # HEAD through a BaseHTTPMiddleware.
        lambda c: (
            c.request.method == "HEAD"
            and any(la.family == "bhm" for la in c.stack.layers)
        ),
        # An endpoint's background task racing a slow server send().
        lambda c: (
            c.endpoint.background != "none"
            and c.server.send_checkpoints > 0
            and any(la.family == "bhm" for la in c.stack.layers)
        ),
        # (A no-content status or a stream of several chunks through GZip with
        # accept-encoding: gzip are about 1 case in 700 to 6000: too slow to
        # find here; `asgifuzz fuzz --max-time 120 --seed 1` reports I11:no-body
        # after 4246 cases.)
    ],
    ids=["head-bhm", "background-slow-send"],
)
def test_the_strategies_reach_it(condition: Any) -> None:
    assert condition(find(cases(), condition, settings=_FIND))
