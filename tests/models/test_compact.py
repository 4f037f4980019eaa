"""The compact body form of case files and the endpoint's response sizes."""

from __future__ import annotations

import json
import zlib

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.vendor.pretty import pretty

from asgifuzz.models import Case, Endpoint, Request
from asgifuzz.models._compact import COMPACT_OVER, compact, pieces
from asgifuzz.models._parts import response_content
from asgifuzz.models._reader import MAX_FILE_BYTES


def _joined(found: list[bytes | tuple[bytes, int]]) -> bytes:
    return b"".join(p if isinstance(p, bytes) else p[0] * p[1] for p in found)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.tuples(st.binary(min_size=1, max_size=4), st.integers(0, 300)).map(
                lambda t: t[0] * t[1]
            ),
        ),
        max_size=5,
    ).map(b"".join)
)
def test_pieces_join_back_to_the_bytes(data: bytes) -> None:
    assert _joined(pieces(data)) == data


def test_a_one_mib_body_is_a_small_readable_case() -> None:
    body = b'{"data": "' + b"a" * (1 << 20) + b'"}'
    case = Case(request=Request(method="POST", body=(body[:7], body[7:])))
    text = case.to_json()
    assert len(text) < 1000 < MAX_FILE_BYTES
    assert json.loads(text)["request"]["body"] == [
        '{"data"',
        [': "', {"repeat": "a", "times": 1 << 20}, '"}'],
    ]
    assert Case.from_json(text) == case


def test_short_or_incompressible_segments_stay_strings() -> None:
    noise = zlib.compress(bytes(range(256)) * 40)  # no runs of 64 repeats
    for segment in (b"a" * COMPACT_OVER, noise * 30):
        text = Case(request=Request(body=(segment,))).to_json()
        assert isinstance(json.loads(text)["request"]["body"][0], str)
        assert Case.from_json(text).request.body == (segment,)
    assert compact(b"a" * (COMPACT_OVER + 1)) == [(b"a", COMPACT_OVER + 1)]


def test_old_cases_are_written_as_before() -> None:
    # No new key unless a new field is set: older cases keep their hashes.
    data = json.loads(Case(request=Request(body=(b"ab",))).to_json())
    assert set(data["endpoint"]) == {
        "kind",
        "status",
        "chunks",
        "media_type",
        "interval",
        "group",
        "on_disconnect",
        "background",
        "pauses",
    }
    assert data["request"]["body"] == ["ab"]


def test_endpoint_sizes_round_trip() -> None:
    for endpoint in (
        Endpoint(size=0),
        Endpoint(size=1024, compressible=False),
        Endpoint(kind="stream", size=600),
    ):
        case = Case(endpoint=endpoint)
        assert Case.from_json(case.to_json()) == case
    data = json.loads(Case(endpoint=Endpoint(size=5)).to_json())["endpoint"]
    assert data["size"] == 5
    assert "compressible" not in data


def test_response_content_has_the_size_and_compresses_or_not() -> None:
    for size in (0, 1, 500, 4096):
        for compressible in (True, False):
            assert len(response_content(size, compressible)) == size
    text, noise = response_content(4096, True), response_content(4096, False)
    assert text.startswith(b"hello hello")
    assert len(zlib.compress(text)) < 100
    assert len(zlib.compress(noise)) > 4000
    assert response_content(4096, False) == noise  # the same bytes every time


def test_a_large_request_has_a_short_repr_that_evaluates_back() -> None:
    # Hypothesis warns about (and with -W error, fails on) reprs over 30 kB.
    for request in (
        Request(),
        Request(body=(b"ab",)),
        Request(headers=(("a", "b"),), body=(b"ab", b"cd")),
        Request(body=(b'{"data": "' + b"a" * (1 << 20) + b'"}',)),
    ):
        assert len(repr(request)) < 200
        assert pretty(request) == repr(request)  # as Hypothesis reports it
        assert eval(repr(request)) == request  # our own repr: safe to evaluate
