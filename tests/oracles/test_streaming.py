"""I4 streaming: a chunk is delivered once a client could decode it, not when
some bytes arrived (a gzip header alone is no chunk)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from test_oracles import outcome

from asgifuzz._driver.outcome import Outcome, ServerResponse
from asgifuzz._oracles.facts import facts
from asgifuzz._oracles.registry import judge_outcome
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets import specs as _targets
from asgifuzz.models import Case, Endpoint, Layer, Request, Stack

STREAM = Case(endpoint=Endpoint("stream", chunks=2, interval=1))
C0, C1 = b"data: 0\n\n", b"data: 1\n\n"
GZIP = (b"content-encoding", b"gzip")


def body(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def streamed(first: bytes, rest: bytes, *headers: tuple[bytes, bytes]) -> Outcome:
    """Chunk 0 is made at tick 2 and chunk 1 at tick 4; the server gets
    ``first`` at tick 3 (between them) and ``rest`` at tick 5."""
    start = {"type": "http.response.start", "status": 200, "headers": list(headers)}
    events = [
        (0, "send", start),
        (-1, "note", None),  # the endpoint makes chunk 0
        (0, "send", body(first, True)),
        (-1, "note", None),  # the endpoint makes chunk 1
        (0, "send", body(rest, False)),
    ]
    response = ServerResponse(True, 200, list(headers), first + rest, 2, True)
    return outcome(STREAM, events, chunks_made=[2, 4], response=response)


def keys(o: Outcome) -> list[str]:
    return [v.key for v in judge_outcome(o) if v.invariant == "I4"]


def test_identity_chunks_count_by_their_bytes() -> None:
    assert keys(streamed(C0, C1)) == []
    assert keys(streamed(C0[:4], C0[4:] + C1)) == ["I4:streaming"]


def test_a_gzip_header_alone_is_no_delivered_chunk() -> None:
    """Starlette's GZip before it flushed each chunk (PR #3411): the first
    message is the 10-byte header, the chunks come at the end."""
    whole = gzip.compress(C0 + C1)
    o = streamed(whole[:10], whole[10:], GZIP)
    (v,) = judge_outcome(o)
    assert v.key == "I4:streaming"
    assert "(10 bytes there, 0 once decoded from gzip)" in v.message


def test_a_flushed_gzip_chunk_is_delivered() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = c.compress(C0) + c.flush(zlib.Z_SYNC_FLUSH)
    assert keys(streamed(first, c.compress(C1) + c.flush(), GZIP)) == []


def test_a_broken_stream_delivers_nothing_more() -> None:
    assert keys(streamed(b"\x1f\x8bgarbage!", C1, GZIP)) == ["I4:streaming"]


def test_a_coding_that_cannot_be_decoded_is_not_judged() -> None:
    o = streamed(b"\x1f\x9d", b"\x90", (b"content-encoding", b"compress"))
    assert facts(o).delivered() is None
    assert keys(o) == []


def test_delivered_counts_raw_and_decoded_bytes() -> None:
    whole = gzip.compress(C0 + C1)
    assert facts(streamed(C0, C1)).delivered() == [(3, 9, 9), (5, 18, 18)]
    assert facts(streamed(whole[:10], whole[10:], GZIP)).delivered() == [
        (3, 10, 0),
        (5, len(whole), 18),
    ]


def test_brotli_chunks_where_installed() -> None:
    brotli = pytest.importorskip("brotli")
    br = (b"content-encoding", b"br")
    c = brotli.Compressor()
    flushed = c.process(C0) + c.flush()
    assert keys(streamed(flushed, c.process(C1) + c.finish(), br)) == []
    c = brotli.Compressor()
    held = c.process(C0)  # not flushed: nothing decodes yet
    assert keys(streamed(held, c.process(C1) + c.finish(), br)) == ["I4:streaming"]


# --- real runs ----------------------------------------------------------------


class _Compressing:
    """A user's pure-ASGI gzip middleware for streams; ``flush`` says whether it
    flushes each chunk (Starlette 1.10's GZip) or holds them (earlier ones)."""

    flush = True

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

        async def compressing(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k != b"content-length"
                ]
                message = {**message, "headers": [*headers, GZIP]}
            elif message["type"] == "http.response.body":
                more = message.get("more_body", False)
                data = c.compress(message.get("body", b""))
                if not more:
                    data += c.flush()
                elif self.flush:
                    data += c.flush(zlib.Z_SYNC_FLUSH)
                message = {**message, "body": data}
            await send(message)

        await self.app(scope, receive, compressing)


class Flushing(_Compressing):
    flush = True


class Holding(_Compressing):
    flush = False


@pytest.fixture
def _compressors(monkeypatch: pytest.MonkeyPatch) -> None:
    from asgifuzz.strategies._user import allow_middleware

    monkeypatch.setattr(_targets, "_MIDDLEWARE", dict(_targets._MIDDLEWARE))
    allow_middleware([Flushing, Holding])


@pytest.mark.usefixtures("_compressors")
@pytest.mark.parametrize(("layer", "streams"), [("Flushing", True), ("Holding", False)])
def test_a_content_encoded_stream_through_the_driver(layer: str, streams: bool) -> None:
    case = Case(
        stack=Stack((Layer(f"user.{layer}"),)),
        # Two chunks: the byte count took Holding's gzip header for chunk 0.
        endpoint=Endpoint("stream", chunks=2, interval=1),
    )
    verdict = judge(case)
    for backend in ("asyncio", "trio"):
        assert facts(verdict.outcomes[backend]).codings == ("gzip",)
        got = [v.key for v in verdict.violations[backend]]
        assert got == ([] if streams else ["I4:streaming"])


def test_gzip_streams_server_sent_events_where_it_promises_to() -> None:
    """GZip leaves ``text/event-stream`` alone since 0.47 (PR #2871); before,
    it compressed it and held the chunks: only its gzip header arrived, which
    the byte count took for a delivered chunk."""
    from starlette.middleware import gzip as starlette_gzip

    compresses_sse = "text/event-stream" not in getattr(
        starlette_gzip, "DEFAULT_EXCLUDED_CONTENT_TYPES", ()
    )
    case = Case(
        stack=Stack((Layer("starlette.gzip", options={"minimum_size": 0}),)),
        endpoint=Endpoint(
            "stream", chunks=2, interval=1, media_type="text/event-stream"
        ),
        request=Request(headers=(("accept-encoding", "gzip"),)),
    )
    verdict = judge(case, ("asyncio",))
    got = [v.key for v in verdict.violations["asyncio"]]
    assert got == (["I4:streaming"] if compresses_sse else [])
