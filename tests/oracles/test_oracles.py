"""Each invariant, shown to fail on a hand-built bad transcript (and pass on a good one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from asgifuzz._driver.outcome import Outcome, ServerResponse
from asgifuzz._driver.server import ClientDisconnected
from asgifuzz._errors import ModelError
from asgifuzz._oracles import verdict as _verdict
from asgifuzz._oracles.registry import judge_outcome
from asgifuzz._oracles.transparency import transparency
from asgifuzz._oracles.verdict import InvariantViolation, judge
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Stack
from asgifuzz.models._record import Background, Event, Read, Recorder

START = {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]}
BODY = {"type": "http.response.body", "body": b"ok", "more_body": False}


def outcome(
    case: Case | None = None,
    events: Sequence[tuple[int, str, Mapping[str, Any] | None]] | None = None,
    **fields: Any,
) -> Outcome:
    """An outcome with two boundaries (server -> app -> endpoint) and ``events``."""
    rec = Recorder(boundaries=["app", "endpoint"])
    if events is None:
        events = [(0, "send", START), (0, "send", BODY)]
    for where, kind, message in events:
        copy = None if message is None else dict(message)
        rec.events.append(Event(rec.tick(), 0.0, where, kind, copy))
    for name in ("raised", "handled", "reads", "background", "chunks_made"):
        if name in fields:
            setattr(rec, name, fields.pop(name))
    rec.disconnected = fields.pop("disconnected", None)
    rec.response_complete = fields.pop("response_complete", None)
    response = fields.pop("response", ServerResponse(True, 200, [], b"ok", 1, True))
    return Outcome(
        case=case or Case(),
        backend="asyncio",
        recorder=rec,
        response=response,
        returned=True,
        **fields,
    )


def keys(o: Outcome) -> list[str]:
    return [v.key for v in judge_outcome(o)]


def test_a_good_transcript_passes() -> None:
    assert keys(outcome()) == []


def test_i1_runtime_error() -> None:
    assert keys(outcome(escaped=RuntimeError("No response returned."))) == [
        "I1:RuntimeError"
    ]


def test_i1_disconnect_errors_are_clean_only_after_a_disconnect() -> None:
    from starlette.requests import ClientDisconnect

    assert keys(outcome(escaped=ClientDisconnect(), disconnected=1)) == []
    assert keys(outcome(escaped=ClientDisconnect())) == ["I1:ClientDisconnect"]


def test_i1_500_without_an_exception() -> None:
    response = ServerResponse(True, 500, [], b"", 1, True)
    assert "I1:500" in keys(outcome(response=response))


def test_i1_500_names_the_exception_behind_it_when_the_client_had_gone() -> None:
    """A user layer raised, ServerErrorMiddleware's 500 could not be sent (the
    client had left): what escaped is the disconnect, the layer's exception
    its context. The message names it instead of saying nothing raised."""
    response = ServerResponse(True, 500, [], b"", 1, False)
    try:
        try:
            raise IndexError("pop index out of range")
        except IndexError:
            raise ClientDisconnected("the client has disconnected")  # noqa: B904
    except ClientDisconnected as exc:
        gone = exc
    assert isinstance(gone.__context__, IndexError)
    ran = outcome(response=response, escaped=gone, disconnected=3)
    ran.freeze_exceptions()
    found = judge_outcome(ran)
    # The root cause, under its own key and frame (the same signature as when
    # the client stays and the IndexError escapes itself): one finding, not two.
    [violation] = [v for v in found if v.invariant == "I1"]
    assert violation.key == "I1:IndexError"
    here = "test_oracles.py:test_i1_500_names_the_exception_behind_it_when_the_client_had_gone"
    assert violation.signature == f"I1:IndexError@{here}"
    assert "IndexError: pop index out of range, which no endpoint" in violation.message
    assert f"(at {here})" in violation.message
    assert "the context of ClientDisconnected" in violation.message
    assert ran.context_app_frames(1) == (here,)
    assert ran.context_app_frames(2) == ()
    bare = ClientDisconnected("the client has disconnected")
    bare.__context__ = IndexError("never raised here")  # no traceback: no frames
    ran = outcome(response=response, escaped=bare, disconnected=3)
    ran.freeze_exceptions()
    [violation] = [v for v in judge_outcome(ran) if v.invariant == "I1"]
    assert violation.signature == "I1:IndexError"
    assert "(at an unknown frame)" in violation.message
    plain = outcome(response=response, escaped=None, disconnected=3)
    [message] = [v.message for v in judge_outcome(plain) if v.key == "I1:500"]
    assert message.endswith("though no endpoint or layer raised anything")


def test_i1_incomplete_response_while_connected() -> None:
    response = ServerResponse(True, 200, [], b"", 0, False)
    assert keys(outcome(response=response)) == ["I1:incomplete"]


@pytest.mark.parametrize(
    ("events", "tag"),
    [
        ([(0, "send", START), (0, "send", START)], "start-twice"),
        ([(0, "send", BODY)], "body-first"),
        ([(0, "send", START), (0, "send", BODY), (0, "send", BODY)], "after-final"),
        ([(0, "send", {**START, "status": "200"}), (0, "send", BODY)], "status"),
        (
            [(0, "send", {**START, "headers": [("a", "b")]}), (0, "send", BODY)],
            "headers",
        ),
        ([(0, "send", START), (0, "send", {**BODY, "body": "ok"})], "body-type"),
        ([(1, "send", {"type": "http.response.bogus"})], "type"),
        (
            [
                (
                    1,
                    "receive",
                    {"type": "http.request", "body": b"", "more_body": False},
                ),
                (
                    1,
                    "receive",
                    {"type": "http.request", "body": b"", "more_body": False},
                ),
            ],
            "request-after-body",
        ),
    ],
)
def test_i2_message_sequences(events: list[Any], tag: str) -> None:
    assert f"I2:{tag}" in keys(outcome(events=events))


def test_i3_endpoint_reads_other_bytes() -> None:
    case = Case(request=Request(body=(b"ab", b"cd")))
    assert keys(outcome(case, reads=[Read("endpoint", b"cd", True)])) == ["I3"]
    assert keys(outcome(case, reads=[Read("endpoint", b"abcd", True)])) == []
    assert keys(outcome(case, reads=[Read("endpoint", b"ab", False, "x")])) == []
    assert keys(outcome(case, reads=[Read("endpoint", b"cd", False, "x")])) == ["I3"]


def test_i3_policy_empty_body_below_a_stream_reading_bhm() -> None:
    case = Case(
        stack=Stack(layers=(Layer("bhm.read_stream"),)), request=Request(body=(b"ab",))
    )
    assert keys(outcome(case, reads=[Read("endpoint", b"", True)])) == []


def test_i4_hang_and_patience() -> None:
    assert keys(outcome(hung=True)) == ["I4:app"]
    assert keys(outcome(timed_out=True)) == ["I4:response"]
    waiting = Case(endpoint=Endpoint(kind="wait_disconnect"))
    assert keys(outcome(waiting, timed_out=True)) == []


def test_i4_streaming_promise() -> None:
    case = Case(endpoint=Endpoint(kind="stream", chunks=2, interval=1))
    chunk = {"type": "http.response.body", "body": b"data: 0\n\n", "more_body": True}
    late = [
        (0, "send", START),
        (1, "send", START),
        (-1, "note", None),
        (-1, "note", None),
    ]
    o = outcome(
        case, events=[*late, (0, "send", chunk), (0, "send", BODY)], chunks_made=[3, 4]
    )
    assert "I4:streaming" in keys(o)
    early = [
        (0, "send", START),
        (-1, "note", None),
        (0, "send", chunk),
        (-1, "note", None),
    ]
    o = outcome(case, events=[*early, (0, "send", BODY)], chunks_made=[2, 4])
    assert "I4:streaming" not in keys(o)


def test_i4_streaming_counts_the_bytes_of_sized_chunks() -> None:
    # A 1 KiB chunk of which only 9 bytes reached the server is not streamed.
    case = Case(endpoint=Endpoint(kind="stream", chunks=2, interval=1, size=1024))
    for sent, streamed in ((b"x" * 9, False), (b"x" * 1024, True)):
        chunk = {"type": "http.response.body", "body": sent, "more_body": True}
        early = [
            (0, "send", START),
            (-1, "note", None),
            (0, "send", chunk),
            (-1, "note", None),
        ]
        o = outcome(case, events=[*early, (0, "send", BODY)], chunks_made=[2, 4])
        assert ("I4:streaming" not in keys(o)) is streamed


def _bg(**fields: Any) -> Background:
    return Background("endpoint", **fields)


@pytest.mark.parametrize(
    ("record", "tag"),
    [
        (_bg(), "never"),
        (_bg(runs=2, started=5, finished=6), "twice"),
        (_bg(runs=1, started=1, finished=6), "early"),
        (_bg(runs=1, started=5), "unfinished"),
    ],
)
def test_i5_background(record: Background, tag: str) -> None:
    events = [
        (1, "send", START),
        (1, "send", BODY),
        (0, "send", START),
        (0, "send", BODY),
    ]
    o = outcome(events=events, background=[record], response_complete=4)
    assert f"I5:{tag}" in keys(o)


def test_i5_blocking_background() -> None:
    case = Case(endpoint=Endpoint(background="wait"))
    events = [
        (1, "send", START),
        (1, "send", BODY),
        (0, "send", START),
        (0, "send", BODY),
    ]
    record = _bg(runs=1, started=5, finished=6, response_complete_at_end=False)
    assert "I5:blocking" in keys(outcome(case, events=events, background=[record]))


def test_i6_collapsed_wrapped_swallowed_reraised() -> None:
    inner = ModelError("the endpoint")
    group = ExceptionGroup("g", [inner])
    assert keys(outcome(escaped=inner, raised=[group])) == ["I6:collapsed"]
    other = ModelError("the endpoint")
    assert keys(outcome(escaped=ExceptionGroup("x", [other]), raised=[other])) == [
        "I6:wrapped"
    ]
    assert keys(outcome(raised=[other])) == ["I6:swallowed"]
    assert keys(outcome(escaped=other, raised=[other], handled=[other])) == [
        "I6:reraised"
    ]
    assert keys(outcome(escaped=other, raised=[other])) == []


def test_i6_a_copied_group_is_itself() -> None:
    inner = ModelError("the endpoint")
    group = ExceptionGroup("g", [inner])
    copy = group.derive([inner])
    assert keys(outcome(escaped=copy, raised=[group])) == []


def test_i7_leaks() -> None:
    o = outcome(
        warnings=["ResourceWarning: Unclosed <MemoryObjectReceiveStream at 0x1>"]
    )
    assert keys(o) == ["I7:MemoryObjectReceiveStream"]
    assert keys(outcome(pending_tasks=["<Task pending>"])) == ["I7:task"]
    assert keys(outcome(unraisable=["ValueError: x in <obj>"])) == ["I7:unraisable"]
    assert keys(outcome(warnings=["DeprecationWarning: old"])) == []


def _gc(generator: str) -> str:
    return (
        f"ResourceWarning: Async generator '{generator}' was garbage collected"
        " before it had been exhausted."
    )


def test_i7_two_generators_left_open_are_two_bugs() -> None:
    body_stream = (
        "starlette.middleware.base.BaseHTTPMiddleware.__call__.<locals>.body_stream"
    )
    chunks = "app.build.<locals>.chunks"
    found = judge_outcome(outcome(warnings=[_gc(body_stream), _gc(chunks)]))
    assert [v.key for v in found] == ["I7:asyncgen", "I7:asyncgen"]
    assert [v.signature for v in found] == [
        "I7:asyncgen@starlette.middleware.base.BaseHTTPMiddleware.__call__.<locals>:body_stream",
        "I7:asyncgen@app.build.<locals>:chunks",
    ]
    # A model layer's generator left open with Starlette's does not name the
    # failure: what left it open does (one bug, not two findings).
    ours = "asgifuzz.models._middleware.ModelHTTPMiddleware.dispatch.<locals>.t"
    for warnings in ([_gc(ours), _gc(body_stream)], [_gc(body_stream), _gc(ours)]):
        first, second = judge_outcome(outcome(warnings=warnings))
        assert "body_stream" in first.signature
        assert "dispatch" in second.signature
    (alone,) = judge_outcome(outcome(warnings=[_gc(ours)]))
    assert alone.signature.endswith("<locals>:t")
    # Another leak has no generator to name.
    (stream,) = judge_outcome(outcome(warnings=["ResourceWarning: Unclosed <X at 1>"]))
    assert stream.signature == "I7:X"


def test_i9_disconnect_not_delivered() -> None:
    case = Case(endpoint=Endpoint(kind="wait_disconnect"), client=Client("receive", 0))
    events = [(1, "receive", {"type": "http.request", "body": b"", "more_body": False})]
    o = outcome(case, events=events, disconnected=1, hung=True)
    assert keys(o) == ["I9:endpoint"]


def test_i8_transparency() -> None:
    """A pass-through layer that makes a failed stream look complete is caught."""
    case = Case(stack=Stack(layers=(Layer("bhm.passthrough"),)))
    err = ModelError("the endpoint (while streaming)")
    with_layer = outcome(case, escaped=err, raised=[err])
    without = outcome(
        escaped=err,
        raised=[err],
        response=ServerResponse(True, 200, [], b"ok", 1, False),
    )
    assert judge_outcome(without) == []  # a clean reference
    violations = transparency(
        case, with_layer, "asyncio", lambda c, b: without, judge_outcome
    )
    assert [v.key for v in violations] == ["I8:complete+"]
    assert "complete+: True vs False" in violations[0].message


def test_i10_backends_disagree(monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = outcome(), outcome(escaped=RuntimeError("x"))
    runs = iter([good, bad])
    monkeypatch.setattr(_verdict, "run", lambda case, backend: next(runs))
    verdict = judge(Case())
    assert [v.key for v in verdict.violations["both"]] == ["I10"]


def test_check_raises_one_class_per_failure_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_verdict, "run", lambda case, backend: outcome(hung=True))
    with pytest.raises(InvariantViolation) as info:
        _verdict.check(Case(), ("asyncio",))
    assert type(info.value).__name__ == "InvariantViolationI4App"
    assert info.value.violations == [
        Violation("I4", info.value.violations[0].message, "app")
    ]
