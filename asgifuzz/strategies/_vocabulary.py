"""The request vocabulary: header families and typed bodies that switch real
middleware on (session and CSRF layers read cookies, auth layers read
``authorization``, proxy-header layers ``x-forwarded-*``, request-id layers
``x-request-id``, compressors ``accept-encoding``, body codecs the content type).

Requests are drawn swarm-style (Groce et al., "Swarm testing", ISSTA 2012): a
family is off half the time (a coin per family), else one of its values, so
that any combination of families (four at once: one case in sixteen) comes up
as often as a single one. Each family's values are prebuilt (valid ones first,
then malformed ones), and its coin and value are one ``sampled_from``: drawing
stays cheap. Shrinking turns the families off, which
leaves no extra header and the untyped body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, TypeVar

from hypothesis import strategies as st

from asgifuzz.models import Request
from asgifuzz.models._websocket import Handshake

Headers = tuple[tuple[str, str], ...]

#: A JWT-shaped token (header.payload.signature, base64url).
_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
_UUID = "3f1c5a9e-8f5b-4a5e-9d1a-2b6f0c7e4d21"

#: Cookie headers: valid, malformed, many, large; one header or two.
COOKIES: tuple[Headers, ...] = tuple(
    tuple(("cookie", v) for v in values)
    for values in (
        ("session=abc123",),
        ("a=1; b=2",),
        ("csrftoken=Yq5Lb0sXf2; sessionid=k3j4h5g6",),
        ("session=abc123", "theme=dark"),  # two cookie headers (HTTP/2 splits them)
        ("; ".join(f"c{i}=v{i}" for i in range(100)),),  # many
        ("big=" + "x" * 4000,),  # near the 4096-byte limit of browsers
        ("a=1; a=2",),  # the same name twice
        ('quoted="a b c"; empty=',),
        ("=novalue",),
        ("noequals",),
        ("a=1;;b=2;",),
        ('a="unterminated',),
        ("a=caf\xe9",),  # not UTF-8 (latin-1 é)
        ("a=%zz%; b=%C3%A9",),  # bad and good percent-escapes
        (" spaced = value ; x = y ",),
        ("",),
    )
)
#: Authorization headers: bearer, basic, other schemes and garbage.
AUTHORIZATIONS: tuple[Headers, ...] = tuple(
    (("authorization", v),)
    for v in (
        f"Bearer {_JWT}",
        "Basic dXNlcjpwYXNzd29yZA==",  # user:password
        "Basic Og==",  # ":" (empty user and password)
        "bearer lowercase-scheme",
        "Token abc123",
        "Bearer",
        "Bearer ",
        "Basic dXNlcg==",  # "user" (no colon)
        "Basic !!!not-base64!!!",
        "Basic /+7/",  # bytes that are not UTF-8
        "Basic " + "QUFB" * 1000,
        'Digest username="u", realm="r", nonce="n", response="x"',
        "garbage",
        "",
    )
)
#: Proxy headers: ``x-forwarded-*``, ``x-real-ip`` and RFC 7239 ``forwarded``.
FORWARDED: tuple[Headers, ...] = (
    (("x-forwarded-for", "203.0.113.7"),),
    (("x-forwarded-proto", "https"),),
    (("x-forwarded-for", "203.0.113.7, 10.0.0.1"), ("x-forwarded-proto", "https")),
    (("x-forwarded-host", "example.com"), ("x-forwarded-port", "443")),
    (
        ("x-forwarded-for", "198.51.100.17"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
        ("forwarded", "for=198.51.100.17;proto=https;host=api.example.com"),
    ),
    (("forwarded", "for=192.0.2.43;proto=https;host=example.com"),),
    (("forwarded", 'for="[2001:db8:cafe::17]:4711"'),),
    (("forwarded", "for=unknown, for=198.51.100.17;by=203.0.113.43"),),
    (("x-forwarded-for", "2001:db8::1"), ("x-real-ip", "2001:db8::1")),
    (("x-forwarded-for", "unknown"),),
    (("x-forwarded-for", "not an ip, , 999.1.1.1"),),
    (("x-forwarded-proto", "wss"),),
    (("x-forwarded-proto", "https, http"),),
    (("x-forwarded-proto", "HTTPS"),),
    (("x-forwarded-host", "evil.example:8443, example.com"),),
    (("x-forwarded-host", ""),),
    (("forwarded", "garbage;;=="),),
)
#: Request-id headers: valid UUIDs and junk.
REQUEST_IDS: tuple[Headers, ...] = (
    (("x-request-id", _UUID),),
    (("x-correlation-id", _UUID),),
    (("x-request-id", _UUID), ("x-correlation-id", _UUID.upper())),
    (("x-request-id", _UUID.replace("-", "")),),
    (("x-request-id", "not-a-uuid"),),
    (("x-correlation-id", "../../etc/passwd"),),
    (("x-request-id", "x" * 200),),
    (("x-request-id", "id-caf\xe9"),),
    (("x-request-id", ""),),
    (("x-request-id", "a"), ("x-request-id", "b")),
)
#: Accept-encoding values over gzip, br, zstd, deflate and identity, with
#: q-values. Plain ``gzip`` first, and most values accept gzip (what most clients
#: send), so that a compressing layer compresses often.
ACCEPT_ENCODINGS: tuple[Headers, ...] = tuple(
    (("accept-encoding", v),)
    for v in (
        "gzip",
        "gzip, deflate, br",
        "gzip, deflate, br, zstd",
        "br",
        "zstd",
        "deflate",
        "identity",
        "br;q=1.0, gzip;q=0.8, *;q=0.1",
        "zstd, br;q=0.9, gzip;q=0.8",
        "gzip;q=0.5, br;q=0.5",
        "deflate;q=1, gzip;q=0.001",
        "GZIP",
        "*",
        "gzip;q=0",
        "identity;q=0",
        "*;q=0",
        "gzip;q=abc",
        "gzip;q=1.5",
        "x-unknown",
        "",
    )
)


@dataclass(frozen=True)
class BodyType:
    """A typed body: ``prefix + filler * n + suffix`` of about the drawn size.

    ``count`` puts the number of fillers (plus ``count - 1``, to claim more
    than there are) after the prefix as a 4-byte big-endian integer, as
    msgpack's array32 header does.
    """

    content_type: str
    prefix: bytes
    filler: bytes
    suffix: bytes = b""
    count: int = 0

    def body(self, size: int) -> bytes:
        """The body of about ``size`` bytes (never below the empty one)."""
        skeleton = len(self.prefix) + len(self.suffix) + (4 if self.count else 0)
        n = max(0, size - skeleton) // len(self.filler)
        head = self.prefix
        if self.count:
            head += (n + self.count - 1).to_bytes(4, "big")
        return head + self.filler * n + self.suffix


_PART = b'--XyZ\r\nContent-Disposition: form-data; name="field"\r\n\r\n'
_FILE = (
    b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)
_MULTIPART = "multipart/form-data; boundary=XyZ"
_FORM = "application/x-www-form-urlencoded"
#: Content types with bodies valid for them, then bodies that are not.
BODY_TYPES: tuple[BodyType, ...] = (
    BodyType("application/json", b'{"data": "', b"a", b'"}'),
    BodyType(_FORM, b"name=", b"a", b"&count=1"),
    BodyType(_MULTIPART, _PART, b"a", b"\r\n--XyZ--\r\n"),
    BodyType("text/plain; charset=utf-8", b"", "é".encode()),
    BodyType("application/octet-stream", b"", b"\x00\xff\x10\x80"),
    BodyType("application/msgpack", b"\xdd", b"\x01", count=1),  # array32 of 1s
    BodyType("application/json; charset=utf-8", b"[", b"1, ", b"0]"),
    BodyType(_FORM, b"q=", b"%C3%A9", b"&page=2"),
    BodyType(_MULTIPART, _FILE, b"\x00\x01\x02\xff", b"\r\n--XyZ--\r\n"),
    BodyType("text/plain; charset=latin-1", b"", b"\xe9"),
    BodyType("text/html; charset=utf-8", b"<p>", b"a", b"</p>"),
    BodyType("application/vnd.api+json", b'{"data": {"id": "', b"1", b'"}}'),
    # Bodies that are not valid for their content type, at every size (what
    # makes them invalid is in the prefix or suffix, not in the filler):
    BodyType(_FORM, b"name=\xe9", b"a", b"&x=1"),  # non-UTF-8 form data
    BodyType(_FORM, b"caf\xe9=", b"1"),  # a name that is not UTF-8
    BodyType(_FORM, b"name=%FF", b"a", b"&x=%zz"),  # escapes of non-UTF-8, bad ones
    BodyType(_MULTIPART, _PART, b"a"),  # truncated: no closing boundary
    BodyType(_MULTIPART, b"--Other\r\n\r\n", b"a", b"\r\n--Other--\r\n"),
    BodyType("multipart/form-data", _PART, b"a", b"\r\n--XyZ--\r\n"),  # no boundary
    BodyType("application/json", b'{"data": "', b"a"),  # truncated
    BodyType("application/json", b'{"data": "\xff', b"a", b'"}'),  # not UTF-8
    BodyType("application/json", b"{'data': ", b"1", b"}"),  # not JSON
    BodyType("application/msgpack", b"\xdd", b"\x01", count=2),  # one short
    BodyType("application/msgpack", b"\xc1", b"\xc1"),  # a byte msgpack never uses
    BodyType("text/plain; charset=utf-8", b"\xff\xfe", b"a"),  # not UTF-8
    BodyType("text/plain; charset=x-unknown", b"", b"a"),
    BodyType("application/json; charset=", b"{", b" ", b"}"),
    BodyType("garbage", b"", b"a"),
)
#: Typed bodies are up to ``2**MAX_BODY_EXPONENT`` bytes (2 MiB), log-uniform:
#: the largest are over the 1 MiB body limit many servers and layers default to.
MAX_BODY_EXPONENT = 21


def _half_off(values: tuple[object, ...]) -> st.SearchStrategy[Any]:
    """None (off) half the time, else one of ``values``: a family's coin and its
    value in one draw, shrinking toward off, then toward the first value."""
    return st.sampled_from((None,) * len(values) + values)


#: The header families, in the order a case draws them (made once: drawing a
#: prebuilt strategy skips Hypothesis' strategy cache).
_FAMILIES = tuple(
    _half_off(family)
    for family in (COOKIES, AUTHORIZATIONS, FORWARDED, REQUEST_IDS, ACCEPT_ENCODINGS)
)
_TYPED = _half_off(BODY_TYPES)
_BODY_INDEX = {kind: i for i, kind in enumerate(BODY_TYPES)}
#: The groups of `BODY_TYPES` by content type, the way swarm generation
#: (`asgifuzz.strategies._swarm`) turns typed bodies on and off.
CONTENT_GROUPS = ("json", "form", "multipart", "text", "other")


def content_group(content_type: str) -> str:
    """The `CONTENT_GROUPS` entry of ``content_type`` (``other`` for unknown ones)."""
    media = content_type.partition(";")[0].strip().lower()
    if media.endswith("json"):
        return "json"
    if media == _FORM:
        return "form"
    if media.startswith("multipart/"):
        return "multipart"
    if media.startswith("text/"):
        return "text"
    return "other"  # octet-stream, msgpack and unknown types


_EXPONENTS = st.integers(0, MAX_BODY_EXPONENT)


@st.composite
def typed_bodies(
    draw: st.DrawFn, kind: BodyType, *, max_chunks: int = 4
) -> tuple[bytes, ...]:
    """A body of ``kind`` of 0 to 2 MiB (log-uniform: an exponent ``e``, then a
    size in ``[2**(e-1), 2**e]``), split into up to ``max_chunks`` segments at
    drawn points. Shrinks toward the smallest body in one segment."""
    exponent = draw(_EXPONENTS)
    data = kind.body(draw(st.integers((1 << exponent) >> 1, 1 << exponent)))
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=max(0, max_chunks - 1)))
    points = [0, *sorted(cuts), len(data)]
    return tuple(data[a:b] for a, b in pairwise(points)) if data else ()


@st.composite
def request_contents(
    draw: st.DrawFn,
    others: st.SearchStrategy[Sequence[tuple[str, str]]],
    untyped: st.SearchStrategy[tuple[bytes, ...]],
    *,
    max_chunks: int = 4,
) -> tuple[Headers, tuple[bytes, ...]]:
    """A request's headers and body, drawn swarm-style: each header family (and
    a typed body) is off half the time, else one of its values.

    ``others`` draws further headers; ``untyped`` draws the body of a request
    without a typed one. Shrinks toward ``others``' and ``untyped``'s simplest.
    """
    return contents_of(draw, others, untyped, max_chunks=max_chunks)


def contents_of(
    draw: st.DrawFn,
    others: st.SearchStrategy[Sequence[tuple[str, str]]],
    untyped: st.SearchStrategy[tuple[bytes, ...]],
    *,
    max_chunks: int = 4,
    bodies: Sequence[BodyType] | None = None,
) -> tuple[Headers, tuple[bytes, ...]]:
    """`request_contents`, drawn by the caller's ``draw``; with ``bodies``, a
    typed body is one of them (a drawn type not among them stands for one that
    is, or for the untyped body if ``bodies`` is empty)."""
    headers: list[tuple[str, str]] = []
    for family in _FAMILIES:
        # The coin and the value in one draw: turning a family off is then one
        # smaller choice, which the shrinker always tries (a coin with its value
        # drawn later needs a deletion too, and often fails).
        drawn = draw(family)
        if drawn is not None:
            headers += drawn
    headers += draw(others)
    kind = draw(_TYPED)
    if kind is not None and bodies is not None and kind not in bodies:
        kind = bodies[_BODY_INDEX[kind] % len(bodies)] if bodies else None
    if kind is not None:
        body = draw(typed_bodies(kind, max_chunks=max_chunks))
        headers.append(("content-type", kind.content_type))
    else:
        body = draw(untyped)
    return tuple(headers), body


#: What carries request headers: an HTTP request or a websocket handshake.
Headed = TypeVar("Headed", Request, Handshake)


def with_user_headers(
    request: Headed, extra: Headers = (), cookies: Sequence[str] = ()
) -> Headed:
    """``request`` (or a websocket handshake) with the user's ``extra`` headers
    (which replace drawn ones of the same names) and ``cookies`` (``name=value``:
    put first in the drawn cookie header, or in a cookie header of their own)."""
    names = {name.lower() for name, _ in extra}
    kept: list[tuple[str, str]] = [
        (n, v) for n, v in request.headers if n.lower() not in names
    ]
    if cookies:
        jar = "; ".join(cookies)
        at = next((i for i, (n, _) in enumerate(kept) if n.lower() == "cookie"), None)
        if at is None:
            kept.append(("cookie", jar))
        else:
            drawn = kept[at][1]
            kept[at] = ("cookie", f"{jar}; {drawn}" if drawn else jar)
    return replace(request, headers=(*kept, *extra))
