"""Content codings decoded as a client decodes them: whole, or as they arrive."""

from __future__ import annotations

import gzip
import zlib

import pytest

from asgifuzz._oracles.decoding import content_codings, decode, decoder

DATA = b"data: 0\n\ndata: 1\n\n"


def sync_flushed_gzip(*chunks: bytes) -> list[bytes]:
    """A gzip stream sent one message per chunk, each flushed (Starlette 1.10's GZip)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [c.compress(chunk) + c.flush(zlib.Z_SYNC_FLUSH) for chunk in chunks]
    return [*out, c.flush()]


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def test_codings_in_the_order_applied() -> None:
    headers = [
        (b"Content-Encoding", b"br, GZIP"),
        (b"content-type", b"text/plain"),
        (b"content-encoding", b"identity, deflate"),
    ]
    assert content_codings(headers) == ("br", "gzip", "deflate")
    assert content_codings([(b"content-type", b"text/plain")]) == ()


def test_no_coding_is_the_body_itself() -> None:
    assert decode(b"abc", (), whole=True) == b"abc"


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", gzip.compress(DATA, mtime=0)),
        ("x-gzip", gzip.compress(DATA, mtime=0)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", raw_deflate(DATA)),  # raw deflate, which clients accept too
    ],
)
def test_whole_bodies_decode(coding: str, encoded: bytes) -> None:
    assert decode(encoded, (coding,), whole=True) == DATA


def test_concatenated_gzip_members_decode() -> None:
    twice = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert decode(twice, ("gzip",), whole=True) == b"abcd"
    d = decoder(("gzip",))
    assert d is not None
    assert d.feed(gzip.compress(b"ab")) == b"ab"
    assert d.feed(gzip.compress(b"cd")) == b"cd"  # the next member, a message later


def test_a_truncated_stream_decodes_only_as_part_of_a_body() -> None:
    cut = gzip.compress(DATA)[:-4]  # the trailer is missing: the stream never ends
    assert decode(cut, ("gzip",), whole=False) == DATA
    assert decode(cut, ("gzip",), whole=True) is None


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", b"not gzip at all"),
        ("gzip", gzip.compress(DATA, mtime=0)[:10] + b"\xff" * 8),
        ("deflate", raw_deflate(DATA) + b"trailing"),
        ("deflate", zlib.compress(DATA) + b"x"),
    ],
)
def test_a_broken_stream_does_not_decode(coding: str, encoded: bytes) -> None:
    assert decode(encoded, (coding,), whole=False) is None


def test_an_unknown_coding_cannot_be_decoded() -> None:
    assert decoder(("compress",)) is None
    assert decode(b"abc", ("compress",), whole=True) is None
    assert decode(gzip.compress(b"abc"), ("gzip", "compress"), whole=True) is None


def test_stacked_codings_are_undone_last_first() -> None:
    body = gzip.compress(zlib.compress(DATA))  # deflate first, then gzip
    assert decode(body, ("deflate", "gzip"), whole=True) == DATA
    assert decode(body, ("gzip", "deflate"), whole=True) is None


def test_a_stream_decodes_as_it_arrives() -> None:
    messages = sync_flushed_gzip(b"data: 0\n\n", b"data: 1\n\n")
    d = decoder(("gzip",))
    assert d is not None
    assert [d.feed(m) for m in messages] == [b"data: 0\n\n", b"data: 1\n\n", b""]
    assert d.ended


def test_a_gzip_header_alone_decodes_to_nothing() -> None:
    """What GZip sent before it flushed each chunk: a 10-byte header first."""
    whole = gzip.compress(b"data: 0\n\n")
    d = decoder(("gzip",))
    assert d is not None
    assert d.feed(whole[:10]) == b""
    assert not d.ended
    assert d.feed(whole[10:]) == b"data: 0\n\n"
    assert d.ended


def test_a_raw_deflate_stream_decodes_as_it_arrives() -> None:
    encoded = raw_deflate(DATA * 20)
    d = decoder(("deflate",))
    assert d is not None
    out = b"".join(d.feed(encoded[i : i + 3]) for i in range(0, len(encoded), 3))
    assert out == DATA * 20
    assert d.ended


def test_after_a_broken_stream_nothing_more_decodes() -> None:
    d = decoder(("gzip",))
    assert d is not None
    assert d.feed(b"garbage!") == b""
    assert d.broken
    assert d.feed(gzip.compress(b"x")) == b""
    assert not d.ended


def test_brotli_where_installed() -> None:
    brotli = pytest.importorskip("brotli")
    assert decode(brotli.compress(DATA), ("br",), whole=True) == DATA
    assert decode(brotli.compress(DATA)[:-2], ("br",), whole=True) is None
    assert decode(b"\xff\xff not brotli", ("br",), whole=False) is None
    c = brotli.Compressor()
    first = c.process(b"data: 0\n\n") + c.flush()
    d = decoder(("br",))
    assert d is not None
    assert d.feed(first) == b"data: 0\n\n"
    assert d.feed(c.finish()) == b""
    assert d.ended
    assert d.feed(b"more") == b""
    assert d.broken


def test_zstd_where_installed() -> None:
    zstandard = pytest.importorskip("zstandard")
    frame = zstandard.ZstdCompressor().compress(b"ab")
    assert decode(frame + frame, ("zstd",), whole=True) == b"abab"
    assert decode(frame[:-2], ("zstd",), whole=True) is None
    assert decode(b"not zstd at all", ("zstd",), whole=False) is None
