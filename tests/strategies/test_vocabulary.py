"""The request vocabulary: each family comes up, rare combinations come up, and
examples shrink toward no extra header and an empty body."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from asgifuzz.models import Endpoint, Request
from asgifuzz.strategies import endpoints, requests
from asgifuzz.strategies._vocabulary import (
    ACCEPT_ENCODINGS,
    AUTHORIZATIONS,
    BODY_TYPES,
    COOKIES,
    FORWARDED,
    REQUEST_IDS,
    BodyType,
    Headers,
    typed_bodies,
    with_user_headers,
)

#: Examples enough to meet a value drawn one time in a hundred, whatever the seed.
ENOUGH = settings(max_examples=3000, database=None)


def _header(r: Request, name: str) -> str | None:
    return next((v for n, v in r.headers if n == name), None)


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_requests_shrink_to_no_header_and_no_body() -> None:
    assert find(requests(), lambda r: True) == Request()


def _any_of(family: tuple[Headers, ...]) -> Callable[[Request], bool]:
    names = {name for value in family for name, _ in value}
    return lambda r: any(n in names for n, _ in r.headers)


@pytest.mark.parametrize(
    "family", [COOKIES, AUTHORIZATIONS, FORWARDED, REQUEST_IDS, ACCEPT_ENCODINGS]
)
def test_each_family_shrinks_to_its_first_value_alone(
    family: tuple[Headers, ...],
) -> None:
    # Any value of the family will do: the shrinker reaches the first.
    found = find(requests(), _any_of(family))
    assert found == Request(headers=family[0])


def test_a_rarer_value_shrinks_to_itself_alone() -> None:
    # Only some values hold br: the shrinker stops at one of them, alone.
    found = find(requests(), lambda r: "br" in (_header(r, "accept-encoding") or ""))
    assert len(found.headers) == 1
    assert found.body == ()


def test_a_non_utf8_form_body_comes_up_and_shrinks() -> None:
    def non_utf8_form(r: Request) -> bool:
        if _header(r, "content-type") != "application/x-www-form-urlencoded":
            return False
        try:
            r.body_bytes.decode()
        except UnicodeDecodeError:
            return True
        return False

    found = find(requests(), non_utf8_form, settings=ENOUGH)
    assert found.headers == (("content-type", "application/x-www-form-urlencoded"),)
    # The smallest body of either non-UTF-8 form type (a value, or a name).
    assert found.body_bytes in (b"name=\xe9&x=1", b"caf\xe9=")


def test_bodies_reach_one_mib_and_rare_combinations_come_up() -> None:
    size = find(
        requests().map(lambda r: len(r.body_bytes)),
        lambda n: n >= 1 << 20,
        settings=ENOUGH,
    )
    assert size < (1 << 20) + 200
    # Four families at once: the swarm's coins make that about 1 in 16.
    names = ("cookie", "authorization", "x-request-id", "accept-encoding")
    four = find(
        requests(),
        lambda r: all(_header(r, n) is not None for n in names),
        settings=ENOUGH,
    )
    assert {n for n, _ in four.headers} == set(names)


@settings(max_examples=50)
@given(st.sampled_from(BODY_TYPES).flatmap(lambda k: typed_bodies(k, max_chunks=3)))
def test_typed_bodies_are_split_into_segments(chunks: tuple[bytes, ...]) -> None:
    assert len(chunks) <= 3
    assert not chunks or b"".join(chunks)  # an empty body has no segment


def test_typed_bodies_are_valid_for_their_type_or_not() -> None:
    json_body = BODY_TYPES[0].body(100)
    assert json_body.startswith(b'{"data": "')
    assert len(json_body) == 100
    msgpack = BodyType("application/msgpack", b"\xdd", b"\x01", count=1)
    assert msgpack.body(8) == b"\xdd\x00\x00\x00\x03\x01\x01\x01"
    short = BodyType("application/msgpack", b"\xdd", b"\x01", count=2)
    assert short.body(8)[1:5] == (4).to_bytes(4, "big")  # claims one more
    assert BODY_TYPES[0].body(0) == b'{"data": ""}'
    # An invalid body is invalid at every size, the smallest too.
    forms = [t for t in BODY_TYPES if t.content_type.startswith("application/x-www")]
    not_utf8 = [t for t in forms if not _utf8(t.body(0))]
    assert len(not_utf8) == 2
    assert all(not _utf8(t.body(n)) for t in not_utf8 for n in (0, 1, 100))


def test_user_headers_replace_drawn_ones_and_cookies_join_the_jar() -> None:
    drawn = Request(
        headers=(("authorization", "garbage"), ("cookie", "a=1"), ("x", "y"))
    )
    out = with_user_headers(
        drawn, (("Authorization", "Bearer t"), ("x-api-key", "k")), ("sid=9",)
    )
    assert out.headers == (
        ("cookie", "sid=9; a=1"),
        ("x", "y"),
        ("Authorization", "Bearer t"),
        ("x-api-key", "k"),
    )
    alone = with_user_headers(Request(), (), ("sid=9", "t=2"))
    assert alone.headers == (("cookie", "sid=9; t=2"),)
    assert with_user_headers(drawn) == drawn


def test_endpoints_draw_response_sizes_over_compression_minimums() -> None:
    big = find(endpoints(), lambda e: (e.size or 0) >= 1024 and not e.compressible)
    assert big == Endpoint(size=1024, compressible=False)
    assert find(endpoints(kinds=["stream"]), lambda e: e.size is not None).size == 0


@given(st.data())
def test_sizes_only_where_the_kind_uses_them(data: st.DataObject) -> None:
    endpoint = data.draw(endpoints())
    if endpoint.kind not in ("plain", "stream", "raise_streaming"):
        assert endpoint.size is None
