"""The parts of a case: the registries of kinds (simplest first) and the plain
frozen dataclasses for the layers, the stack, the endpoint, the request, the
client and the server."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from asgifuzz.models._compact import expression

#: Middleware behaviours with a `BaseHTTPMiddleware` model and a pure-ASGI twin,
#: simplest first (Hypothesis' ``sampled_from`` shrinks toward the front).
BEHAVIOURS = (
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
)
#: Starlette's own middlewares that need no outside service.
STARLETTE_MIDDLEWARES = ("gzip", "cors", "trusted_host", "sessions", "https_redirect")
LAYER_KINDS = (
    *(f"{family}.{b}" for b in BEHAVIOURS for family in ("bhm", "asgi")),
    *(f"starlette.{m}" for m in STARLETTE_MIDDLEWARES),
)
STACK_MODES = ("starlette", "wrap")
ENDPOINT_KINDS = (
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
)
#: Endpoints that use an ASGI extension (each answers plainly where it is not
#: advertised); drawn only on request: ``endpoints(kinds=ALL_ENDPOINT_KINDS)``.
EXTENSION_ENDPOINT_KINDS = ("trailers", "pathsend", "early_hint", "zerocopysend")
ALL_ENDPOINT_KINDS = (*ENDPOINT_KINDS, *EXTENSION_ENDPOINT_KINDS)
BACKGROUNDS = ("none", "checkpoint", "raise", "wait")
DISCONNECTS = ("never", "receive", "response_start", "body_message", "checkpoints")
SERVERS = ("uvicorn", "hypercorn", "daphne", "granian", "strict")
#: The HTTP versions each profile speaks (uvicorn and daphne: HTTP/1.1 only).
HTTP_VERSIONS = {
    "uvicorn": ("1.1",),
    "hypercorn": ("1.1", "2"),
    "daphne": ("1.1",),
    "granian": ("1.1", "2"),
    "strict": ("1.1", "2"),
}
#: The media types of streaming endpoints.
MEDIA_TYPES = ("text/plain", "text/event-stream", "application/octet-stream")
#: Layer kinds that must not change what the server sees (invariant I8).
PASSTHROUGH_KINDS = ("bhm.passthrough", "asgi.passthrough")
#: Attribution's stand-ins for a user's encoder (`asgifuzz.models._encode`),
#: drawn by no strategy.
ENCODE_KINDS = ("bhm.encode", "asgi.encode")
#: A user target's name (``user.<name>`` layers, ``Case.app``): an identifier.
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

JSONScalar = int | str | bool


@dataclass(frozen=True)
class Option:
    """One constructor option a layer kind takes, as a case file may set it.

    ``kind`` is ``int`` (a value in ``[lo, hi]``) or ``str`` (printable ASCII of
    ``lo`` to ``hi`` characters); ``meaning`` names the parameter it sets.
    """

    kind: type[int] | type[str]
    lo: int
    hi: int
    meaning: str


#: The options each layer kind takes (every other kind takes none), checked
#: when a case is read: the values `asgifuzz.models._middleware` passes on.
LAYER_OPTIONS: dict[str, dict[str, Option]] = {
    # Over the largest body a case file can hold, every value means "never".
    "starlette.gzip": {
        "minimum_size": Option(int, 0, 1 << 20, "GZipMiddleware(minimum_size=...)")
    },
    # An origin is scheme://host[:port] (or "*"): a URL's worth of characters.
    "starlette.cors": {
        "origin": Option(str, 1, 2048, "CORSMiddleware(allow_origins=[...])")
    },
    # A DNS name is at most 253 characters; "*." may lead it.
    "starlette.trusted_host": {
        "host": Option(str, 1, 255, "TrustedHostMiddleware(allowed_hosts=[...])")
    },
    # The codings a user's encoder declared, comma-separated ("br,gzip").
    **{
        kind: {
            "codings": Option(str, 1, 64, "the codings of the encoder it stands for")
        }
        for kind in ENCODE_KINDS
    },
}


@dataclass(frozen=True)
class Layer:
    """One middleware layer of a stack.

    Attributes:
        kind: ``"<family>.<behaviour>"``, one of `LAYER_KINDS`; the family is
            ``bhm`` (a `BaseHTTPMiddleware` subclass), ``asgi`` (its pure-ASGI twin)
            or ``starlette`` (one of Starlette's own middlewares); or
            ``"user.<name>"``, a middleware the user allowed under that name
            (see `asgifuzz.strategies.cases`).
        pauses: scheduler checkpoints (``anyio.sleep(0)``) before and after the
            layer calls the next one.
        options: constructor options of Starlette's middlewares, e.g.
            ``{"minimum_size": 0}`` for GZip; the status code of a short-circuit.
    """

    kind: str
    pauses: tuple[int, int] = (0, 0)
    options: dict[str, JSONScalar] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.kind.partition(".")[0]

    @property
    def behaviour(self) -> str:
        return self.kind.partition(".")[2]


@dataclass(frozen=True)
class Stack:
    """An ordered list of layers, outermost first, and how it is put together.

    ``mode="starlette"`` passes them as ``Starlette(middleware=[...])`` (inside
    ``ServerErrorMiddleware``); ``mode="wrap"`` wraps the app by hand,
    ``Outer(Inner(app))``, the way people wrap a finished app.
    """

    layers: tuple[Layer, ...] = ()
    mode: str = "starlette"


@dataclass(frozen=True)
class Endpoint:
    """The endpoint at the bottom of the stack.

    Attributes:
        kind: one of `ENDPOINT_KINDS`.
        status: the status of ``plain``/``empty`` responses (204 or 304 for empty).
        chunks: how many chunks a streaming endpoint yields (or before it raises).
        media_type: the streaming response's media type.
        interval: virtual seconds a streaming endpoint waits between chunks.
        group: raise an ``ExceptionGroup`` of one `ModelError` instead of the bare one.
        on_disconnect: what a body-reading endpoint does on ``ClientDisconnect``:
            ``"raise"`` lets it propagate, ``"respond"`` answers with a response.
        background: the background task attached to the response, if any.
        pauses: checkpoints before and after the endpoint's main step.
        size: the size in bytes of a ``plain`` response's body, and of each
            chunk of a streaming one, instead of the model's usual few bytes
            (None); see `response_content`.
        compressible: whether that body is text that compresses well, or bytes
            that do not compress.
    """

    kind: str = "plain"
    status: int = 200
    chunks: int = 1
    media_type: str = "text/plain"
    interval: int = 0
    group: bool = False
    on_disconnect: str = "raise"
    background: str = "none"
    pauses: tuple[int, int] = (0, 0)
    size: int | None = None
    compressible: bool = True


#: The largest response body (or chunk) an endpoint sends, in bytes.
MAX_RESPONSE_SIZE = 8 << 20


def response_content(size: int, compressible: bool) -> bytes:
    """A response body of ``size`` bytes: ``hello hello ...`` (compresses well)
    or SHAKE-256 output (does not); the reproducers compute it the same way."""
    if compressible:
        return (b"hello " * (size // 6 + 1))[:size]
    return hashlib.shake_256(b"asgifuzz").digest(size)


@dataclass(frozen=True)
class Request:
    """The HTTP request as the client sends it; ``body`` is its segments on the wire."""

    method: str = "GET"
    path: str = "/"
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: tuple[bytes, ...] = ()
    scheme: str = "http"

    @property
    def body_bytes(self) -> bytes:
        return b"".join(self.body)

    def __repr__(self) -> str:
        # A long segment as pieces and runs (b"a" * 1048576): a failing case's
        # report stays readable, and under Hypothesis' 30 kB repr limit.
        body = ", ".join(expression(c) for c in self.body)
        return (
            f"Request(method={self.method!r}, path={self.path!r}, "
            f"query={self.query!r}, headers={self.headers!r}, "
            f"body=({body}{',' * (len(self.body) == 1)}), scheme={self.scheme!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis' (and IPython's) pretty printer prints a dataclass field by
        # field, bypassing __repr__: this makes it print the short one.
        printer.text(repr(self))


@dataclass(frozen=True)
class Client:
    """When the client goes away.

    ``disconnect`` is one of `DISCONNECTS`: ``never`` (it waits with patience,
    see `asgifuzz._driver.server.PATIENCE`); ``receive``: it is gone when the app calls
    ``receive()`` for the ``at``-th time (0-based), so ``at`` below the number of
    body messages is "before the body is complete"; ``response_start``: right after
    the server gets ``http.response.start``; ``body_message``: after the ``at``-th
    response body message; ``checkpoints``: after ``at`` scheduler checkpoints.
    """

    disconnect: str = "never"
    at: int = 0


@dataclass(frozen=True)
class Server:
    """How the server behaves; ``name`` picks a measured profile (`SERVERS`).

    ``send_checkpoints`` makes ``send()`` slow: it checkpoints that many times
    before returning. ``receive_checkpoints`` makes the body arrive slowly:
    ``receive()`` checkpoints that many times before it hands over each body
    message (other tasks run meanwhile, as while a real upload trickles in).
    ``http_version`` is the scope's (`HTTP_VERSIONS`): the extensions a
    profile advertises depend on it (`asgifuzz._driver.extensions`).
    """

    name: str = "uvicorn"
    send_checkpoints: int = 0
    receive_checkpoints: int = 0
    http_version: str = "1.1"
