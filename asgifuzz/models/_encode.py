"""The stand-in for a user's encoder: a layer that gzips the response body.

Attribution (`asgifuzz._oracles.verdict.stand_ins`) swaps each user layer for a
built-in one of its family and replays the case; a layer that declares it
encodes (``encodes = "br"``) is swapped for ``bhm.encode`` or ``asgi.encode``,
not for a pass-through: an encoder makes a body of its own (a compressed stream
of nothing is not empty), and a bug of Starlette's below it may need that body
(brotli-asgi gives the empty 307 of ``HTTPSRedirectMiddleware`` a one-byte
``br`` stream, and that is what leaves `BaseHTTPMiddleware`'s body stream
unfinished above it).

It encodes the way a careful compressor does, with gzip (the one coding of
the standard library, so that a reproducer needs nothing more): only when the
client accepts one of the codings the user's layer declared (``codings``, ``*``
included; any q above 0), not a response that has a coding already, not one
whose status or method means no content (1xx, 204, 304, ``HEAD``: RFC 9110
§6.4.1). It holds ``http.response.start`` until the first body message, drops
``content-length``, adds ``content-encoding: gzip`` and ``vary:
Accept-Encoding``, and compresses each body message as it comes (sync-flushed
while more follows), so streaming holds; an empty final message gets the
stream's end (20 bytes for a body of nothing). These kinds are not drawn by the
strategies: they are attribution's only.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterable

from asgifuzz._types import Message, Scope, Send

#: The codings a stand-in encodes for when its layer names none.
DEFAULT_CODINGS = "gzip"
#: Statuses whose response has no content (RFC 9110 §15.3.5, §15.4.5).
_NO_CONTENT = (204, 304)


def accepts(headers: Iterable[tuple[bytes, bytes]], codings: str) -> bool:
    """Whether an ``accept-encoding`` among ``headers`` takes one of ``codings``
    (comma-separated), or ``*``, with a q above 0."""
    wanted = {c.strip().lower() for c in codings.split(",") if c.strip()} | {"*"}
    for name, value in headers:
        if name.lower() != b"accept-encoding":
            continue
        for item in value.decode("latin-1").split(","):
            coding, *params = (p.strip() for p in item.split(";"))
            q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
            try:
                weight = float(q)
            except ValueError:
                weight = 0.0
            if coding.lower() in wanted and weight > 0:
                return True
    return False


def encodes(
    scope: Scope, status: int, headers: Iterable[tuple[bytes, bytes]], codings: str
) -> bool:
    """Whether the stand-in encodes this response (see the module's docstring)."""
    if status < 200 or status in _NO_CONTENT or scope.get("method") == "HEAD":
        return False
    if any(name.lower() == b"content-encoding" for name, _ in headers):
        return False
    return accepts(scope.get("headers", []), codings)


def encoded_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The response headers once gzipped: no ``content-length``, the coding,
    ``vary: Accept-Encoding``."""
    out = [(n, v) for n, v in headers if n.lower() != b"content-length"]
    return [*out, (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]


def gzipper() -> zlib._Compress:
    """A gzip stream (mtime 0: the same bytes on every run)."""
    return zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def encoding_send(scope: Scope, send: Send, codings: str) -> Send:
    """A ``send`` that gzips the response it is given, where `encodes` says."""
    held: list[Message] = []
    stream: list[zlib._Compress] = []

    async def wrapped(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = list(message.get("headers", []))
            if encodes(scope, int(message["status"]), headers, codings):
                held.append({**message, "headers": encoded_headers(headers)})
                stream.append(gzipper())
                return
        elif kind == "http.response.body" and stream:
            more = bool(message.get("more_body", False))
            c = stream[0]
            data = c.compress(bytes(message.get("body", b"")))
            data += c.flush(zlib.Z_SYNC_FLUSH) if more else c.flush()
            if held:
                await send(held.pop())
            message = {"type": kind, "body": data, "more_body": more}
        await send(message)

    return wrapped


async def gzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A body iterator's chunks gzipped, each sync-flushed, then the stream's end."""
    c = gzipper()
    async for chunk in chunks:
        yield c.compress(chunk) + c.flush(zlib.Z_SYNC_FLUSH)
    yield c.flush()
