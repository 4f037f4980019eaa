"""Each middleware and endpoint model does what it says, on both backends."""

from __future__ import annotations

import gzip

import pytest

from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.runner import run
from asgifuzz._errors import ModelError
from asgifuzz.models import (
    BEHAVIOURS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    Case,
    Client,
    Endpoint,
    Layer,
    Request,
    Stack,
)

POST = Request(method="POST", body=(b"ab", b"cd"))


def go(
    backend: str, *layers: Layer, endpoint: Endpoint | None = None, **kw: object
) -> Outcome:
    case = Case(
        stack=Stack(layers=layers),
        endpoint=endpoint or Endpoint(),
        **kw,  # type: ignore[arg-type]
    )
    return run(case, backend)


def header(o: Outcome, name: bytes) -> bytes | None:
    return dict(o.response.headers).get(name)


@pytest.mark.parametrize("family", ["bhm", "asgi"])
class TestBehaviours:
    def test_passthrough(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.passthrough"))
        assert (o.response.status, o.response.body) == (200, b"hello")

    def test_add_header(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.add_header"))
        assert header(o, f"x-asgifuzz-{family}".encode()) == b"1"

    @pytest.mark.parametrize("behaviour", ["read_body", "read_stream"])
    def test_reads(self, backend: str, family: str, behaviour: str) -> None:
        o = go(
            backend,
            Layer(f"{family}.{behaviour}"),
            endpoint=Endpoint(kind="echo"),
            request=POST,
        )
        layer_read, endpoint_read = o.recorder.reads
        assert layer_read.data == b"abcd"
        if family == "asgi":
            # The twin replays what it read; what the endpoint gets below a
            # BaseHTTPMiddleware is Starlette's business (and invariant I3's).
            assert endpoint_read.data == b"abcd"

    def test_poll_disconnect_sees_a_disconnect(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.poll_disconnect"), client=Client("receive", 0))
        assert (
            o.recorder.disconnects_seen[0][0]
            == "layer 0 (" + f"{family}.poll_disconnect)"
        )

    def test_transform_body(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.transform_body"))
        assert o.response.body == b"HELLO"

    def test_replace_body(self, backend: str, family: str) -> None:
        o = go(
            backend,
            Layer(f"{family}.replace_body"),
            endpoint=Endpoint(kind="stream", chunks=2),
        )
        assert o.response.body == b"DATA: 0\n\nDATA: 1\n\n"
        assert o.response.body_messages == 1

    def test_short_circuit(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.short_circuit"))
        assert o.response.status == 403
        assert not any(
            e.where == len(o.recorder.boundaries) - 1 for e in o.recorder.events
        )

    @pytest.mark.parametrize("behaviour", ["raise_before", "raise_after"])
    def test_raises(self, backend: str, family: str, behaviour: str) -> None:
        o = go(backend, Layer(f"{family}.{behaviour}"))
        assert isinstance(o.escaped, ModelError)
        assert o.escaped is o.recorder.raised[0]

    def test_catch(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.catch"), endpoint=Endpoint(kind="raise"))
        assert o.response.status == 502
        assert o.escaped is None
        assert o.recorder.handled == o.recorder.raised

    def test_background(self, backend: str, family: str) -> None:
        o = go(backend, Layer(f"{family}.background"))
        (record,) = o.recorder.background
        assert record.runs == 1
        assert record.finished is not None


def test_every_behaviour_has_a_test() -> None:
    tested = {
        "passthrough",
        "add_header",
        "read_body",
        "read_stream",
        "poll_disconnect",
        "transform_body",
        "replace_body",
        "short_circuit",
        "raise_before",
        "raise_after",
        "catch",
        "background",
    }
    assert tested == set(BEHAVIOURS)
    assert len(LAYER_KINDS) == 2 * len(BEHAVIOURS) + 5


def test_gzip(backend: str) -> None:
    req = Request(headers=(("accept-encoding", "gzip"),))
    o = go(backend, Layer("starlette.gzip", options={"minimum_size": 0}), request=req)
    assert header(o, b"content-encoding") == b"gzip"
    assert gzip.decompress(o.response.body) == b"hello"


def test_cors_preflight(backend: str) -> None:
    req = Request(
        method="OPTIONS",
        headers=(
            ("origin", "http://example.com"),
            ("access-control-request-method", "POST"),
        ),
    )
    o = go(backend, Layer("starlette.cors", options={"origin": "*"}), request=req)
    assert o.response.status == 200
    assert header(o, b"access-control-allow-origin") == b"*"


def test_trusted_host_refuses_others(backend: str) -> None:
    o = go(backend, Layer("starlette.trusted_host", options={"host": "example.com"}))
    assert o.response.status == 400


def test_https_redirect(backend: str) -> None:
    o = go(backend, Layer("starlette.https_redirect"))
    assert o.response.status in (307, 308)


def test_sessions(backend: str) -> None:
    o = go(backend, Layer("starlette.sessions"))
    assert o.response.body == b"hello"


@pytest.mark.parametrize(
    ("endpoint", "check"),
    [
        (Endpoint(kind="plain", status=201), lambda o: o.response.status == 201),
        (Endpoint(kind="json"), lambda o: o.response.body == b'{"ok":true}'),
        (Endpoint(kind="empty", status=204), lambda o: o.response.body == b""),
        (
            Endpoint(kind="stream", chunks=3, media_type="text/event-stream"),
            lambda o: o.response.body.count(b"data:") == 3,
        ),
        (Endpoint(kind="echo"), lambda o: o.recorder.reads[0].data == b"abcd"),
        (Endpoint(kind="stream_body"), lambda o: o.recorder.reads[0].data == b"abcd"),
        (Endpoint(kind="wait_disconnect"), lambda o: o.recorder.disconnects_seen != []),
        (Endpoint(kind="poll_disconnect"), lambda o: o.recorder.disconnects_seen != []),
        (
            Endpoint(kind="raise", group=True),
            lambda o: isinstance(o.escaped, ExceptionGroup),
        ),
        (
            Endpoint(kind="raise_streaming", chunks=1),
            lambda o: o.response.body == b"data: 0\n\n" and o.escaped is not None,
        ),
        (Endpoint(kind="sync"), lambda o: o.response.body == b"sync"),
        (
            Endpoint(background="wait"),
            lambda o: o.recorder.background[0].response_complete_at_end,
        ),
        (Endpoint(background="raise"), lambda o: isinstance(o.escaped, ModelError)),
    ],
)
def test_endpoints(backend: str, endpoint: Endpoint, check: object) -> None:
    o = go(backend, endpoint=endpoint, request=POST, client=Client())
    assert check(o)  # type: ignore[operator]


def test_every_endpoint_kind_is_tested() -> None:
    kinds = {
        "plain",
        "json",
        "empty",
        "stream",
        "echo",
        "stream_body",
        "wait_disconnect",
        "poll_disconnect",
        "raise",
        "raise_streaming",
        "sync",
    }
    assert kinds == set(ENDPOINT_KINDS)
