"""Content codings: what a client can decode of a response body, as it arrives.

A response's ``content-encoding`` lists the codings applied to its body, in
order (RFC 9110 §8.4); a client undoes them last first, incrementally, so a
chunk of a content-encoded stream is delivered when the decoder can give it
back, not when some bytes arrived (a 10-byte gzip header decodes to nothing).
``gzip`` and ``deflate`` are decoded with `zlib` (always there), ``br`` with
``brotli`` or ``brotlicffi`` and ``zstd`` with ``zstandard`` (or Python 3.14's
``compression.zstd``), each only where it is installed: a body with another
coding cannot be decoded here, and the checks then judge it as raw bytes (or
not at all). The libraries are imported on first use, never at start-up.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, Protocol

#: Codings that are no coding at all.
_IDENTITY = ("", "identity")
_GZIP = 16 + zlib.MAX_WBITS


class BrokenStream(ValueError):
    """The bytes are not a valid stream of their coding (a client's decoder fails)."""


def content_codings(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, ...]:
    """The codings of a body, in the order they were applied (``identity`` dropped).

    Several ``content-encoding`` fields and comma-separated lists combine, in
    order (RFC 9110 §5.3); names are case-insensitive.
    """
    out: list[str] = []
    for name, value in headers:
        if name.lower() == b"content-encoding":
            for part in value.decode("latin-1").split(","):
                coding = part.strip().lower()
                if coding not in _IDENTITY:
                    out.append(coding)
    return tuple(out)


class _Stream(Protocol):
    """One coding's incremental decoder."""

    def feed(self, data: bytes) -> bytes: ...

    @property
    def ended(self) -> bool: ...


class _Zlib:
    """gzip or deflate through `zlib`. gzip members may follow one another
    (RFC 1952 §2.2; clients decode concatenated members)."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._wbits = wbits
        self._d = zlib.decompressobj(wbits)
        # HTTP's "deflate" is the zlib format, but some servers send a raw
        # deflate stream; clients (httpx, browsers) accept both, as here.
        self._fallback = raw_fallback
        self._seen = b""  # the input so far, while the fallback is possible

    def feed(self, data: bytes) -> bytes:
        out = b""
        while data:
            if self._d.eof:
                if self._wbits != _GZIP:
                    raise BrokenStream(f"{len(data)} bytes after the end of the stream")
                self._d = zlib.decompressobj(self._wbits)
            try:
                part = self._d.decompress(data)
            except zlib.error as exc:
                if not self._fallback:
                    raise BrokenStream(str(exc)) from None
                self._fallback = False
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                data, self._seen = self._seen + data, b""
                continue
            if self._fallback:
                if part:
                    self._fallback, self._seen = False, b""
                else:
                    self._seen += data
            out += part
            data = self._d.unused_data if self._d.eof else b""
        return out

    @property
    def ended(self) -> bool:
        return self._d.eof


class _Library:
    """A coding decoded by an optional library: ``make()`` gives a decoder
    object, ``step(decoder, data)`` feeds it, ``done(decoder)`` says it ended;
    with ``frames``, a finished frame may be followed by another (zstd)."""

    def __init__(
        self,
        make: Callable[[], Any],
        step: Callable[[Any, bytes], bytes],
        done: Callable[[Any], bool],
        error: type[BaseException] | tuple[type[BaseException], ...],
        *,
        frames: bool = False,
    ) -> None:
        self._make, self._step, self._done, self._error = make, step, done, error
        self._frames = frames
        self._d = make()

    def feed(self, data: bytes) -> bytes:
        out = b""
        try:
            while data:
                if self._done(self._d):
                    if not self._frames:
                        raise BrokenStream(
                            f"{len(data)} bytes after the end of the stream"
                        )
                    self._d = self._make()
                out += bytes(self._step(self._d, data))
                done = self._frames and self._done(self._d)
                data = self._d.unused_data if done else b""
        except self._error as exc:
            raise BrokenStream(str(exc)) from None
        return out

    @property
    def ended(self) -> bool:
        return bool(self._done(self._d))


@cache
def _module(*names: str) -> Any:
    """The first of ``names`` that imports, or None (cached: tried once)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _brotli() -> _Stream | None:
    lib = _module("brotli", "brotlicffi")
    if lib is None:
        return None
    # brotli names the step ``process``; brotlicffi ``decompress``.
    step = "process" if hasattr(lib.Decompressor(), "process") else "decompress"
    return _Library(
        lib.Decompressor,
        lambda d, data: getattr(d, step)(data),
        lambda d: d.is_finished(),
        getattr(lib, "error", Exception),
    )


def _zstd() -> _Stream | None:
    std = _module("compression.zstd")
    if std is not None:  # pragma: no cover (Python 3.14 only)
        return _Library(
            std.ZstdDecompressor,
            lambda d, data: d.decompress(data),
            lambda d: d.eof,
            std.ZstdError,
            frames=True,
        )
    lib = _module("zstandard")
    if lib is None:
        return None
    return _Library(
        lambda: lib.ZstdDecompressor().decompressobj(),
        lambda d, data: d.decompress(data),
        lambda d: d.eof,
        lib.ZstdError,
        frames=True,
    )


_DECODERS: dict[str, Callable[[], _Stream | None]] = {
    "gzip": lambda: _Zlib(_GZIP),
    "x-gzip": lambda: _Zlib(_GZIP),
    "deflate": lambda: _Zlib(zlib.MAX_WBITS, raw_fallback=True),
    "br": _brotli,
    "zstd": _zstd,
}


class Decoder:
    """Undoes a body's codings as the bytes arrive, the way a client does.

    `feed` returns what the bytes so far decode to; after a broken stream
    (`broken`) nothing more decodes. `ended`: every coding's stream ended.
    """

    def __init__(self, streams: Sequence[_Stream]) -> None:
        self._streams = streams  # the last coding applied first
        self.broken = False

    def feed(self, data: bytes) -> bytes:
        if self.broken:
            return b""
        try:
            for stream in self._streams:
                data = stream.feed(data)
        except BrokenStream:
            self.broken = True
            return b""
        return data

    @property
    def ended(self) -> bool:
        return not self.broken and all(s.ended for s in self._streams)


def decoder(codings: Sequence[str]) -> Decoder | None:
    """A decoder for ``codings`` (in the order applied), or None if one of them
    cannot be decoded here (unknown, or its library is not installed)."""
    streams = []
    for coding in reversed(codings):
        make = _DECODERS.get(coding)
        stream = make() if make is not None else None
        if stream is None:
            return None
        streams.append(stream)
    return Decoder(streams)


def decode(body: bytes, codings: Sequence[str], *, whole: bool) -> bytes | None:
    """``body`` decoded from ``codings``, or None if a client could not decode it:
    a coding unknown here, a broken stream, or, for a ``whole`` body (a complete
    response), a stream that does not end. No codings: ``body`` itself."""
    if not codings:
        return body
    d = decoder(codings)
    if d is None:
        return None
    out = d.feed(body)
    if d.broken or (whole and not d.ended):
        return None
    return out
