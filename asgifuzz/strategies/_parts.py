"""The part strategies of a case (stacks, endpoints, requests, clients, servers)
and the argument checks they share with the user-code strategies.

Structure is drawn first (how many layers, how many chunks), then the parts,
and every registry is ordered simplest first, so failing examples shrink toward
fewer layers, fewer and shorter chunks, simpler kinds and no disconnect.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from asgifuzz._types import METHODS
from asgifuzz.models import (
    BACKGROUNDS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    SERVERS,
    Client,
    Endpoint,
    Layer,
    Request,
    Server,
    Stack,
)
from asgifuzz.models._parts import (
    ALL_ENDPOINT_KINDS,
    HTTP_VERSIONS,
    MEDIA_TYPES,
    STACK_MODES,
)
from asgifuzz.strategies import _vocabulary as vocabulary

#: Other meaningful request headers a request draws (up to three of them),
#: besides those of the vocabulary (`asgifuzz.strategies._vocabulary`).
HEADERS = (
    ("content-type", "text/plain"),
    ("origin", "http://example.com"),
    ("access-control-request-method", "POST"),
    ("content-type", "application/json"),
)


#: The sizes of a plain response's body (or of each streamed chunk): the model's
#: few bytes (None), then from empty to well over compressors' minimum sizes
#: (Starlette's GZip 500, brotli-asgi 400, others 1000 or 1 KiB).
RESPONSE_SIZES = (None, 0, 1, 400, 500, 501, 1000, 1024, 4096, 20_000)
#: Each size, compressible (text) or not, in one draw: the model's body (None)
#: half the time, shrinking there.
_SIZED = tuple((n, c) for n in RESPONSE_SIZES[1:] for c in (True, False))
_RESPONSE_BODIES = st.sampled_from(((None, True),) * len(_SIZED) + _SIZED)


def check_bounds(name: str, lo: int, hi: int) -> None:
    """Refuse ``min_<name>=lo`` / ``max_<name>=hi`` unless ``0 <= lo <= hi``."""
    if lo < 0:
        raise InvalidArgument(f"Cannot have min_{name}={lo} < 0; pass a count >= 0")
    if hi < lo:
        raise InvalidArgument(
            f"Cannot have max_{name}={hi} < min_{name}={lo}; raise max_{name}"
        )


def check_kinds(
    name: str, kinds: Sequence[str] | None, allowed: Sequence[str]
) -> tuple[str, ...]:
    """The ``kinds`` chosen among ``allowed`` (all of them for None), in the
    simplest-first order of ``allowed``; `InvalidArgument` names unknown ones."""
    # A tuple, not a list: Hypothesis caches strategies made from hashable
    # arguments, so the composites below do not build (and validate) a new
    # sampled_from on every draw.
    if kinds is None:
        return tuple(allowed)
    chosen = list(kinds)
    unknown = [k for k in chosen if k not in allowed]
    if unknown or not chosen:
        raise InvalidArgument(
            f"{name}={chosen!r} must be a non-empty subset of {list(allowed)}; "
            f"unknown: {unknown}"
        )
    return tuple(k for k in allowed if k in chosen)  # keep the simplest-first order


_pauses = st.tuples(st.integers(0, 2), st.integers(0, 2))


#: A layer's option values, drawn for every kind (each kind keeps those it uses).
LAYER_FIELDS = st.tuples(
    st.sampled_from((0, 500)),
    st.sampled_from(("*", "http://example.com")),
    st.sampled_from(("testserver", "*", "example.com")),
    _pauses,
)
LayerFields = tuple[int, str, str, tuple[int, int]]


@st.composite
def layers(draw: st.DrawFn, kinds: Sequence[str]) -> Layer:
    """One layer of one of ``kinds``, with the options its kind uses."""
    # Every kind draws the same fields, so the kind alone decides simplicity.
    return layer_from(draw(st.sampled_from(kinds)), draw(LAYER_FIELDS))


def layer_from(kind: str, fields: LayerFields) -> Layer:
    """The layer of ``kind`` with those of the drawn ``fields`` it uses."""
    minimum_size, origin, host, pauses = fields
    options: dict[str, int | str | bool] = {}
    if kind == "starlette.gzip":
        options["minimum_size"] = minimum_size
    elif kind == "starlette.cors":
        options["origin"] = origin
    elif kind == "starlette.trusted_host":
        options["host"] = host
    if kind.startswith("starlette."):
        pauses = (0, 0)
    return Layer(kind=kind, pauses=pauses, options=options)


def middleware_stacks(
    *,
    min_layers: int = 0,
    max_layers: int = 4,
    kinds: Sequence[str] | None = None,
) -> st.SearchStrategy[Stack]:
    """Stacks of ``min_layers`` to ``max_layers`` layers drawn from ``kinds``.

    ``kinds`` defaults to every kind in `asgifuzz.models.LAYER_KINDS`
    (`BaseHTTPMiddleware` behaviours, their pure-ASGI twins and Starlette's own
    middlewares). The mode is ``Starlette(middleware=...)`` or hand wrapping.
    Shrinks toward fewer layers, pass-through layers and the Starlette mode.
    """
    check_bounds("layers", min_layers, max_layers)
    chosen = check_kinds("kinds", kinds, LAYER_KINDS)
    return st.builds(
        lambda drawn, mode: Stack(layers=tuple(drawn), mode=mode),
        st.lists(layers(chosen), min_size=min_layers, max_size=max_layers),
        st.sampled_from(STACK_MODES),
    )


@st.composite
def _endpoint(draw: st.DrawFn, kinds: Sequence[str]) -> Endpoint:
    return endpoint_of(draw, draw(st.sampled_from(kinds)))


def endpoint_of(draw: st.DrawFn, kind: str) -> Endpoint:
    """An endpoint of ``kind`` (drawn by the caller), with the options it uses."""
    # Every kind draws the same fields (those it does not use are dropped), so the
    # kind alone decides which example is simpler: shrinking goes to "plain".
    plain_status = draw(st.sampled_from((200, 201, 404)))
    empty_status = draw(st.sampled_from((204, 304)))
    chunks = draw(st.integers(0, 4))
    media_type = draw(st.sampled_from(MEDIA_TYPES))
    interval = draw(st.sampled_from((0, 1)))
    group = draw(st.booleans())
    on_disconnect = draw(st.sampled_from(("raise", "respond")))
    background = draw(st.sampled_from(BACKGROUNDS))
    pauses = draw(_pauses)
    size, compressible = draw(_RESPONSE_BODIES)
    fields: dict[str, object] = {"kind": kind}
    if kind in ("plain", "stream", "raise_streaming") and size is not None:
        fields.update(size=size, compressible=compressible)
    if kind == "plain":
        fields["status"] = plain_status
    elif kind == "empty":
        fields["status"] = empty_status
    elif kind in ("stream", "raise_streaming"):
        fields.update(chunks=chunks, media_type=media_type, interval=interval)
    elif kind in ("echo", "stream_body"):
        fields["on_disconnect"] = on_disconnect
    if kind in ("raise", "raise_streaming"):
        fields["group"] = group
    if kind != "raise":
        fields["background"] = background
    if kind != "sync":
        fields["pauses"] = pauses
    return Endpoint(**fields)  # type: ignore[arg-type]


def endpoints(*, kinds: Sequence[str] | None = None) -> st.SearchStrategy[Endpoint]:
    """Endpoints of the given ``kinds`` (default: all of `ENDPOINT_KINDS`;
    the extensions' endpoints, ``trailers``, ``pathsend``, ``early_hint``,
    only when named).

    Options are drawn only where the kind uses them: statuses, chunk counts,
    media types (``text/event-stream`` among them), intervals in virtual
    seconds, exception groups, background tasks, checkpoints and the size of
    the response body (`RESPONSE_SIZES`, compressible or not).
    """
    if kinds is None:
        return _endpoint(tuple(ENDPOINT_KINDS))
    return _endpoint(check_kinds("kinds", kinds, ALL_ENDPOINT_KINDS))


def body_chunkings(
    *,
    min_chunks: int = 0,
    max_chunks: int = 4,
    max_chunk_size: int = 8,
    allow_empty_chunks: bool = True,
) -> st.SearchStrategy[tuple[bytes, ...]]:
    """Request bodies as the segments the client sends, e.g. ``(b"ab", b"", b"c")``.

    Empty segments become ``b""`` messages with ``more_body=True`` on servers
    that send them (the ``strict`` profile); the others skip them, as real
    servers do. Shrinks toward fewer, shorter chunks.
    """
    check_bounds("chunks", min_chunks, max_chunks)
    check_bounds("chunk_size", 0, max_chunk_size)
    chunk = st.binary(min_size=0 if allow_empty_chunks else 1, max_size=max_chunk_size)
    return st.lists(chunk, min_size=min_chunks, max_size=max_chunks).map(tuple)


def request_contents(
    *, max_chunks: int = 4
) -> st.SearchStrategy[tuple[tuple[tuple[str, str], ...], tuple[bytes, ...]]]:
    """A request's headers and body: the vocabulary's header families and typed
    bodies (`asgifuzz.strategies._vocabulary`, drawn swarm-style; ``gzip`` is
    the first ``accept-encoding``, drawn half the time), up to three of
    `HEADERS`, and a chunked body where the body is untyped. Shrinks toward no
    header and an empty body."""
    return vocabulary.request_contents(
        st.lists(st.sampled_from(HEADERS), max_size=3, unique=True),
        body_chunkings(max_chunks=max_chunks),
        max_chunks=max_chunks,
    )


def requests(*, max_chunks: int = 4) -> st.SearchStrategy[Request]:
    """HTTP requests: method, query, headers and a body (`request_contents`), scheme."""
    return st.builds(
        lambda method, query, contents, scheme: Request(
            method, "/", query, contents[0], contents[1], scheme
        ),
        st.sampled_from(METHODS),
        st.sampled_from(("", "q=1")),  # the fields in order, as before
        request_contents(max_chunks=max_chunks),
        st.sampled_from(("http", "https")),
    )


def disconnect_schedules(*, max_at: int = 6) -> st.SearchStrategy[Client]:
    """When the client hangs up: never (shrinks here), at the n-th ``receive()``,
    after the response starts, after the n-th response body message, or after n
    scheduler checkpoints."""
    check_bounds("at", 0, max_at)
    at = st.integers(0, max_at)
    return st.one_of(
        st.just(Client()),
        st.builds(Client, disconnect=st.just("receive"), at=at),
        st.just(Client(disconnect="response_start")),
        st.builds(Client, disconnect=st.just("body_message"), at=at),
        st.builds(Client, disconnect=st.just("checkpoints"), at=at),
    )


def server_profiles(
    *, names: Sequence[str] | None = None, http2: bool = False
) -> st.SearchStrategy[Server]:
    """Server behaviours (`SERVERS`, uvicorn first), optionally with a slow
    ``send()`` and a body that arrives slowly (checkpoints in ``receive()``);
    ``http2=True`` draws HTTP/2 too where the profile speaks it (its
    extensions differ; shrinks to HTTP/1.1)."""
    chosen = check_kinds("names", names, SERVERS)
    if not http2:
        return st.builds(
            Server,
            name=st.sampled_from(chosen),
            send_checkpoints=st.integers(0, 2),
            receive_checkpoints=st.integers(0, 2),
        )
    return st.builds(
        _server,
        st.sampled_from(chosen),
        st.integers(0, 2),
        st.integers(0, 2),
        st.booleans(),
    )


def _server(name: str, send: int, receive: int, http2: bool) -> Server:
    """A profile on HTTP/2 where it speaks it and ``http2`` is drawn (the
    extensions it advertises differ: `asgifuzz._driver.extensions`)."""
    version = "2" if http2 and "2" in HTTP_VERSIONS[name] else "1.1"
    return Server(name, send, receive, version)
