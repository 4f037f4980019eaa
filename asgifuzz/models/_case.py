"""The case: plain frozen data describing one fuzz run, with a strict JSON form."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

from asgifuzz._errors import CaseFormatError
from asgifuzz._types import ALL_METHODS

#: Version of the JSON case format; bumped on any incompatible change.
FORMAT_VERSION = 1

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
BACKGROUNDS = ("none", "checkpoint", "raise", "wait")
DISCONNECTS = ("never", "receive", "response_start", "body_message", "checkpoints")
SERVERS = ("uvicorn", "hypercorn", "daphne", "granian", "strict")
#: Every method a case may use (app targets have routes with these too).
MEDIA_TYPES = ("text/plain", "text/event-stream", "application/octet-stream")
#: Layer kinds that must not change what the server sees (invariant I8).
PASSTHROUGH_KINDS = ("bhm.passthrough", "asgi.passthrough")
#: A user target's name (``user.<name>`` layers, ``Case.app``): an identifier.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

JSONScalar = int | str | bool


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


@dataclass(frozen=True)
class Client:
    """When the client goes away.

    ``disconnect`` is one of `DISCONNECTS`: ``never`` (it waits with patience,
    see `asgifuzz._driver.runner.PATIENCE`); ``receive``: it is gone when the app calls
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
    """

    name: str = "uvicorn"
    send_checkpoints: int = 0
    receive_checkpoints: int = 0


@dataclass(frozen=True)
class Case:
    """Everything about one run: the app, the request, the client and the server.

    ``seed`` seeds trio's scheduler (its batches of runnable tasks are shuffled);
    asyncio's scheduler is FIFO and ignores it. ``app`` names a user app (allowed
    under that name) that replaces the endpoint: the stack, if any, wraps it.
    """

    stack: Stack = Stack()
    endpoint: Endpoint = Endpoint()
    request: Request = Request()
    client: Client = Client()
    server: Server = Server()
    seed: int = 0
    app: str = ""

    def to_json(self) -> str:
        """The canonical JSON form: sorted keys, format version, two-space indent."""
        return json.dumps(case_to_data(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<case>") -> Case:
        """Parse and validate a case; raise `CaseFormatError` naming the field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaseFormatError(
                f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column "
                f"{exc.colno}); fix the file or delete it"
            ) from None
        return case_from_data(data, source=source)


def _enc_bytes(value: bytes) -> str:
    # latin-1 maps each byte to one code point: lossless and readable for ASCII.
    return value.decode("latin-1")


def case_to_data(case: Case) -> dict[str, Any]:
    """The case as JSON-ready plain data (bytes as latin-1 text)."""
    req = case.request
    return {
        "format": FORMAT_VERSION,
        "stack": {
            "mode": case.stack.mode,
            "layers": [
                {"kind": la.kind, "pauses": list(la.pauses), "options": la.options}
                for la in case.stack.layers
            ],
        },
        "endpoint": {
            f.name: (
                list(getattr(case.endpoint, f.name))
                if f.name == "pauses"
                else getattr(case.endpoint, f.name)
            )
            for f in fields(Endpoint)
        },
        "request": {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": [list(h) for h in req.headers],
            "body": [_enc_bytes(c) for c in req.body],
            "scheme": req.scheme,
        },
        "client": {"disconnect": case.client.disconnect, "at": case.client.at},
        "server": {
            "name": case.server.name,
            "send_checkpoints": case.server.send_checkpoints,
            # Written only when set, so older cases (and their hashes) stay as they were.
            **(
                {"receive_checkpoints": case.server.receive_checkpoints}
                if case.server.receive_checkpoints
                else {}
            ),
        },
        "seed": case.seed,
        # Written only when set, so model cases (and their hashes) are unchanged.
        **({"app": case.app} if case.app else {}),
    }


class _Reader:
    """Pulls typed, validated fields out of untrusted JSON data."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, rule: str) -> CaseFormatError:
        return CaseFormatError(f"{self.source}: field {path!r} {rule}")

    def obj(self, data: object, path: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - keys)
        if unknown:
            raise self.fail(
                path,
                f"has unknown keys {unknown}; allowed keys are {sorted(keys)} "
                "(remove them, or upgrade asgifuzz if the file is newer)",
            )
        return data

    def int_(self, d: dict[str, Any], key: str, path: str, lo: int, hi: int) -> int:
        value = d.get(key, 0)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not lo <= value <= hi
        ):
            raise self.fail(
                f"{path}.{key}", f"is {value!r}; must be an int in [{lo}, {hi}]"
            )
        return value

    def choice(
        self,
        d: dict[str, Any],
        key: str,
        path: str,
        allowed: tuple[str, ...],
        default: str,
    ) -> str:
        value = d.get(key, default)
        if value not in allowed:
            raise self.fail(
                f"{path}.{key}", f"is {value!r}; must be one of {list(allowed)}"
            )
        return str(value)

    def str_(self, d: dict[str, Any], key: str, path: str, default: str = "") -> str:
        value = d.get(key, default)
        if not isinstance(value, str) or len(value) > 10_000:
            raise self.fail(
                f"{path}.{key}", f"is {value!r:.60}; must be a short string"
            )
        return value

    def pauses(self, d: dict[str, Any], path: str) -> tuple[int, int]:
        value = d.get("pauses", [0, 0])
        ok = isinstance(value, list) and len(value) == 2
        if not ok or not all(type(v) is int and 0 <= v <= 100 for v in value):
            raise self.fail(
                f"{path}.pauses", f"is {value!r}; must be two ints in [0, 100]"
            )
        return (value[0], value[1])


def case_from_data(data: object, *, source: str = "<case>") -> Case:
    """Build a `Case` from plain data, refusing anything not in the format.

    Kinds are matched against fixed registries: a case file can name only
    asgifuzz's own models, so loading one never imports anything.
    """
    r = _Reader(source)
    top = r.obj(
        data,
        "$",
        {"format", "stack", "endpoint", "request", "client", "server", "seed", "app"},
    )
    if top.get("format") != FORMAT_VERSION:
        raise r.fail(
            "format",
            f"is {top.get('format')!r}; this asgifuzz reads format {FORMAT_VERSION} "
            "(upgrade asgifuzz, or re-save the case)",
        )
    st = r.obj(top.get("stack", {}), "stack", {"mode", "layers"})
    raw_layers = st.get("layers", [])
    if not isinstance(raw_layers, list) or len(raw_layers) > 64:
        raise r.fail("stack.layers", "must be a list of at most 64 layers")
    layers = []
    for i, raw in enumerate(raw_layers):
        path = f"stack.layers[{i}]"
        d = r.obj(raw, path, {"kind", "pauses", "options"})
        options = d.get("options", {})
        if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, int | str) for k, v in options.items()
        ):
            raise r.fail(f"{path}.options", "must map names to ints, bools or strings")
        kind = d.get("kind")
        user = isinstance(kind, str) and kind.startswith("user.")
        if user and not _USER_NAME.match(str(kind)[5:]):
            raise r.fail(
                f"{path}.kind",
                f"is {kind!r}; a user middleware is 'user.<name>' with an "
                "identifier for a name",
            )
        layers.append(
            Layer(
                kind=str(kind) if user else r.choice(d, "kind", path, LAYER_KINDS, ""),
                pauses=r.pauses(d, path),
                options=dict(options),
            )
        )
    stack = Stack(
        layers=tuple(layers),
        mode=r.choice(st, "mode", "stack", STACK_MODES, "starlette"),
    )

    ep = r.obj(top.get("endpoint", {}), "endpoint", {f.name for f in fields(Endpoint)})
    group = ep.get("group", False)
    if not isinstance(group, bool):
        raise r.fail("endpoint.group", f"is {group!r}; must be true or false")
    endpoint = Endpoint(
        kind=r.choice(ep, "kind", "endpoint", ENDPOINT_KINDS, "plain"),
        status=r.int_(
            {"status": ep.get("status", 200)}, "status", "endpoint", 200, 599
        ),
        chunks=r.int_(ep, "chunks", "endpoint", 0, 1000),
        media_type=r.choice(ep, "media_type", "endpoint", MEDIA_TYPES, "text/plain"),
        interval=r.int_(ep, "interval", "endpoint", 0, 60),
        group=group,
        on_disconnect=r.choice(
            ep, "on_disconnect", "endpoint", ("raise", "respond"), "raise"
        ),
        background=r.choice(ep, "background", "endpoint", BACKGROUNDS, "none"),
        pauses=r.pauses(ep, "endpoint"),
    )

    rq = r.obj(
        top.get("request", {}),
        "request",
        {"method", "path", "query", "headers", "body", "scheme"},
    )
    headers = rq.get("headers", [])
    if not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
        for h in headers
    ):
        raise r.fail("request.headers", "must be a list of [name, value] string pairs")
    body = rq.get("body", [])
    if not isinstance(body, list) or not all(isinstance(c, str) for c in body):
        raise r.fail("request.body", "must be a list of strings (bytes as latin-1)")
    try:
        chunks = tuple(c.encode("latin-1") for c in body)
    except UnicodeEncodeError:
        raise r.fail(
            "request.body",
            "holds a character above U+00FF; bytes are stored as latin-1",
        ) from None
    path = r.str_(rq, "path", "request", "/")
    if not path.startswith("/"):
        raise r.fail("request.path", f"is {path!r}; must start with '/'")
    request = Request(
        method=r.choice(rq, "method", "request", ALL_METHODS, "GET"),
        path=path,
        query=r.str_(rq, "query", "request"),
        headers=tuple((h[0], h[1]) for h in headers),
        body=chunks,
        scheme=r.choice(rq, "scheme", "request", ("http", "https"), "http"),
    )
    cl = r.obj(top.get("client", {}), "client", {"disconnect", "at"})
    client = Client(
        disconnect=r.choice(cl, "disconnect", "client", DISCONNECTS, "never"),
        at=r.int_(cl, "at", "client", 0, 10_000),
    )
    sv = r.obj(
        top.get("server", {}),
        "server",
        {"name", "send_checkpoints", "receive_checkpoints"},
    )
    server = Server(
        name=r.choice(sv, "name", "server", SERVERS, "uvicorn"),
        send_checkpoints=r.int_(sv, "send_checkpoints", "server", 0, 100),
        receive_checkpoints=r.int_(sv, "receive_checkpoints", "server", 0, 100),
    )
    seed = r.int_(top, "seed", "$", 0, 2**64 - 1)
    app = r.str_(top, "app", "$")
    if app and not _USER_NAME.match(app):
        raise r.fail("app", f"is {app!r}; must be the name of an app (an identifier)")
    return Case(
        stack=stack,
        endpoint=endpoint,
        request=request,
        client=client,
        server=server,
        seed=seed,
        app=app,
    )
