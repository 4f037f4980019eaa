from __future__ import annotations

import gc
import gzip
from typing import Any

import anyio
import pytest
from hypothesis import given, settings

from asgifuzz._driver.runner import run
from asgifuzz._driver.server import (
    DAPHNE_CANCEL_AFTER,
    LIMIT,
    PATIENCE,
    ClientDisconnected,
    body_messages,
    make_scope,
)
from asgifuzz._errors import UsageError
from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Server, Stack
from asgifuzz.models._record import Event
from asgifuzz.strategies import cases

#: The start of a gzip stream, and where its header keeps the time it was made.
GZIP_MAGIC, GZIP_MTIME = b"\x1f\x8b\x08", slice(4, 8)


def _timeless(message: Any) -> Any:
    """``message`` with the wall-clock second of a gzip header zeroed: GZip
    up to 0.52.0 at least (1.4.0 uses zlib) writes ``time.time()`` into it, so
    two runs a second apart differ there only; nothing judges those bytes."""
    body = message.get("body") if isinstance(message, dict) else None
    if not (isinstance(body, bytes) and body.startswith(GZIP_MAGIC)):
        return message
    header = bytearray(body)
    header[GZIP_MTIME] = bytes(4)
    return {**message, "body": bytes(header)}


def transcript(events: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (e.tick, e.time, e.where, e.kind, _timeless(e.message), e.detail)
        for e in events
    ]


def test_a_transcript_ignores_only_the_time_in_a_gzip_header() -> None:
    def body(data: bytes) -> list[Event]:
        message = {"type": "http.response.body", "body": data, "more_body": True}
        return [Event(1, 0.0, 0, "send", message)]

    made = gzip.compress(b"data: 0\n\n", mtime=1_700_000_000)
    later = gzip.compress(b"data: 0\n\n", mtime=1_700_000_001)
    assert made != later
    assert transcript(body(made)) == transcript(body(later))
    assert transcript(body(made)) != transcript(body(gzip.compress(b"data: 1\n\n")))


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("uvicorn", [(b"ab", True), (b"c", False)]),
        ("hypercorn", [(b"ab", True), (b"c", True), (b"", False)]),
        ("granian", [(b"ab", True), (b"c", True), (b"", False)]),
        ("daphne", [(b"abc", False)]),
        ("strict", [(b"ab", True), (b"", True), (b"c", False)]),
    ],
)
def test_body_messages_follow_the_server_profile(
    server: str, expected: list[tuple[bytes, bool]]
) -> None:
    case = Case(request=Request(body=(b"ab", b"", b"c")), server=Server(name=server))
    got = [(m["body"], m["more_body"]) for m in body_messages(case)]
    assert got == expected


@pytest.mark.parametrize(
    "server", ["uvicorn", "hypercorn", "daphne", "granian", "strict"]
)
def test_no_body_is_one_empty_final_message(server: str) -> None:
    case = Case(server=Server(name=server))
    assert [(m["body"], m["more_body"]) for m in body_messages(case)] == [(b"", False)]


def test_scope_advertises_the_profiles_spec_version() -> None:
    assert (
        make_scope(Case(server=Server(name="strict")))["asgi"]["spec_version"] == "2.4"
    )
    assert "spec_version" not in make_scope(Case(server=Server(name="daphne")))["asgi"]


def test_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="backend='curio' is not one of"):
        run(Case(), "curio")


def test_plain_request_round_trip(backend: str) -> None:
    o = run(Case(request=Request(method="POST", body=(b"ab", b"cd"))), backend)
    assert o.response.complete
    assert o.response.status == 200
    assert o.response.body == b"hello"
    assert o.escaped is None
    assert not o.hung


@settings(max_examples=25)
@given(case=cases())
def test_a_case_replays_identically(case: Case) -> None:
    for backend in ("asyncio", "trio"):
        first = transcript(run(case, backend).recorder.events)
        # Perturb the heap between runs: object addresses (and so set order and
        # hashes) change, the transcript must not.
        junk = [object() for _ in range(1000)]
        gc.collect()
        second = transcript(run(case, backend).recorder.events)
        del junk
        assert first == second


def test_a_hang_is_found_in_virtual_time(backend: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await anyio.sleep_forever()

    o = run(Case(), backend, app=app)
    assert o.hung
    assert o.timed_out  # the client gave up first, at its patience
    assert max(e.time for e in o.recorder.events) == pytest.approx(PATIENCE)


def test_daphne_cancels_the_app_after_a_disconnect(backend: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await anyio.sleep_forever()

    case = Case(client=Client(disconnect="receive", at=0), server=Server(name="daphne"))
    o = run(case, backend, app=app)
    assert o.app_cancelled
    assert not o.hung
    assert o.recorder.events[-1].time == pytest.approx(DAPHNE_CANCEL_AFTER)
    assert DAPHNE_CANCEL_AFTER < LIMIT


def test_strict_server_raises_oserror_after_disconnect(backend: str) -> None:
    caught: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.disconnect"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            caught.append(exc)

    case = Case(client=Client(disconnect="receive", at=0), server=Server(name="strict"))
    run(case, backend, app=app)
    assert len(caught) == 1
    assert isinstance(caught[0], ClientDisconnected)


@pytest.mark.parametrize(
    ("client", "receives_before_disconnect"),
    [
        (Client(disconnect="receive", at=0), 0),
        (Client(disconnect="receive", at=2), 2),
    ],
)
def test_disconnect_at_the_nth_receive(
    backend: str, client: Client, receives_before_disconnect: int
) -> None:
    got: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(4):
            message = await receive()
            got.append(message["type"])
            if message["type"] == "http.disconnect":
                return

    case = Case(request=Request(body=(b"a", b"b", b"c")), client=client)
    run(case, backend, app=app)
    assert got == ["http.request"] * receives_before_disconnect + ["http.disconnect"]


def test_hypercorn_repeats_no_disconnect(backend: str) -> None:
    got: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got.append((await receive())["type"])
        got.append((await receive())["type"])
        got.append((await receive())["type"])  # blocks forever on hypercorn

    case = Case(
        client=Client(disconnect="receive", at=1), server=Server(name="hypercorn")
    )
    o = run(case, backend, app=app)
    assert got == ["http.request", "http.disconnect"]
    assert o.hung


def test_disconnect_after_response_start(backend: str) -> None:
    case = Case(
        endpoint=Endpoint(kind="stream", chunks=3),
        client=Client(disconnect="response_start"),
    )
    o = run(case, backend)
    assert o.response.started
    assert not o.response.complete
    assert o.recorder.disconnected is not None


def test_sync_endpoint_runs_in_a_thread_without_moving_the_clock(backend: str) -> None:
    o = run(Case(endpoint=Endpoint(kind="sync")), backend)
    assert o.response.body == b"sync"
    assert any("worker thread" in e.detail for e in o.recorder.events)
    assert all(e.time == 0 for e in o.recorder.events)


def test_boundaries_record_every_layer(backend: str) -> None:
    case = Case(
        stack=Stack(layers=(Layer("bhm.passthrough"), Layer("asgi.passthrough")))
    )
    o = run(case, backend)
    sends = {e.where for e in o.recorder.events if e.kind == "send"}
    assert sends == set(range(len(o.recorder.boundaries)))


def test_a_slow_body_arrives_whether_or_not_the_app_receives(backend: str) -> None:
    got: list[tuple[bytes, bool]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # A receive cancelled at once (as is_disconnected() does) finds nothing
        # yet, and does not hold the upload up.
        with anyio.CancelScope() as scope_:
            scope_.cancel()
            await receive()
        await anyio.sleep(1)  # meanwhile the whole body arrives
        for _ in range(3):
            message = await receive()
            got.append((message["body"], message["more_body"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    case = Case(
        request=Request(method="POST", body=(b"a", b"b", b"c")),
        server=Server(name="strict", receive_checkpoints=2),
    )
    o = run(case, backend, app=app)
    assert got == [(b"a", True), (b"b", True), (b"c", False)]
    assert o.response.complete


def test_a_client_that_leaves_sends_no_more_of_its_body(backend: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    case = Case(
        request=Request(method="POST", body=(b"a", b"b", b"c")),
        client=Client(disconnect="checkpoints", at=1),
        server=Server(name="hypercorn", receive_checkpoints=2),
    )
    o = run(case, backend, app=app)
    bodies = [
        (e.message or {}).get("body")
        for e in o.recorder.events
        if e.where == 0 and e.kind == "receive"
    ]
    assert b"c" not in bodies  # it had not arrived when the client left
