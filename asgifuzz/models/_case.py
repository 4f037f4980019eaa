"""The case: everything about one run, with a strict JSON form.

A case file can name only asgifuzz's own models (and ``user.<name>`` targets
by name), so loading one never imports anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from asgifuzz._types import ALL_METHODS
from asgifuzz.models._compact import body_from_data, segment_to_data
from asgifuzz.models._layer_data import layer_options
from asgifuzz.models._lifespan import (
    LIFESPAN_LAYER_KINDS,
    Lifespan,
    lifespan_from_data,
    lifespan_to_data,
)
from asgifuzz.models._parts import (
    ALL_ENDPOINT_KINDS,
    BACKGROUNDS,
    DISCONNECTS,
    ENCODE_KINDS,
    HTTP_VERSIONS,
    LAYER_KINDS,
    MAX_RESPONSE_SIZE,
    MEDIA_TYPES,
    SERVERS,
    STACK_MODES,
    USER_NAME,
    Client,
    Endpoint,
    Layer,
    Request,
    Server,
    Stack,
)
from asgifuzz.models._reader import Reader, parse_json, shown
from asgifuzz.models._websocket import WS_LAYER_KINDS, Session
from asgifuzz.models._ws_data import session_from_data, session_to_data

#: Version of the JSON case format; bumped on any incompatible change.
FORMAT_VERSION = 1
#: The most layers in a stack: the strategies draw up to 4; 64 is deep for any app.
MAX_LAYERS = 64
#: The most body segments: as many as ``client.at`` can count receive() calls.
MAX_SEGMENTS = 10_000
#: The most request headers (http.client and h11 refuse more than 100).
MAX_HEADERS = 100
#: The longest header name, and value: common servers' per-line limit is 8 KiB.
MAX_HEADER_NAME, MAX_HEADER_VALUE = 256, 8192
#: The longest path, and query string: common servers' request-line limit.
MAX_TARGET = 8192
#: The scope types a case can run (``Case.scope``).
CASE_SCOPES = ("http", "websocket")
#: The layer kinds a case file may name (the lifespan ones too).
_KINDS = (*LAYER_KINDS, *LIFESPAN_LAYER_KINDS, *ENCODE_KINDS)


@dataclass(frozen=True)
class Case:
    """Everything about one run: the app, the request, the client and the server.

    ``seed`` seeds trio's scheduler (its batches of runnable tasks are shuffled);
    asyncio's scheduler is FIFO and ignores it. ``app`` names a user app (allowed
    under that name) that replaces the endpoint: the stack, if any, wraps it.
    ``lifespan`` makes the case a lifespan session (`asgifuzz.models.Lifespan`).
    """

    # The parts are frozen (ruff sees that only for dataclasses of this module).
    stack: Stack = Stack()  # noqa: RUF009
    endpoint: Endpoint = Endpoint()  # noqa: RUF009
    request: Request = Request()  # noqa: RUF009
    client: Client = Client()  # noqa: RUF009
    server: Server = Server()  # noqa: RUF009
    seed: int = 0
    app: str = ""
    scope: str = "http"
    websocket: Session = Session()  # noqa: RUF009
    lifespan: Lifespan | None = None

    def to_json(self) -> str:
        """The canonical JSON form: sorted keys, format version, two-space indent."""
        return json.dumps(case_to_data(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<case>") -> Case:
        """Parse and validate a case; raise `CaseFormatError` naming the field."""
        return case_from_data(parse_json(text, source=source), source=source)


def case_to_data(case: Case) -> dict[str, Any]:
    """The case as JSON-ready plain data (bytes as latin-1 text, long runs of
    a repeated unit as ``{"repeat": unit, "times": n}``: `asgifuzz.models._compact`)."""
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
        "endpoint": _endpoint_data(case.endpoint),
        "request": {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": [list(h) for h in req.headers],
            "body": [segment_to_data(c) for c in req.body],
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
            **(
                {"http_version": case.server.http_version}
                if case.server.http_version != "1.1"
                else {}
            ),
        },
        "seed": case.seed,
        # Written only when set, so model cases (and their hashes) are unchanged.
        **({"app": case.app} if case.app else {}),
        # Written only for other scopes, so HTTP cases (and their hashes) stay.
        **({"scope": case.scope} if case.scope != "http" else {}),
        **(
            {"websocket": session_to_data(case.websocket)}
            if case.scope == "websocket"
            else {}
        ),
        **(
            {"lifespan": lifespan_to_data(case.lifespan)}
            if case.lifespan is not None
            else {}
        ),
    }


def _endpoint_data(ep: Endpoint) -> dict[str, Any]:
    data = {f.name: getattr(ep, f.name) for f in fields(Endpoint)}
    data["pauses"] = list(ep.pauses)
    # Written only when set, so older cases (and their hashes) stay as they were.
    if ep.size is None:
        del data["size"]
    if ep.compressible:
        del data["compressible"]
    return data


def case_from_data(data: object, *, source: str = "<case>") -> Case:
    """Build a `Case` from plain data, refusing anything not in the format.

    Kinds are matched against fixed registries: a case file can name only
    asgifuzz's own models, so loading one never imports anything.
    """
    r = Reader(source)
    top = r.obj(
        data,
        "$",
        {
            "format",
            "stack",
            "endpoint",
            "request",
            "client",
            "server",
            "seed",
            "app",
            "scope",
            "websocket",
            "lifespan",
        },
    )
    if top.get("format") != FORMAT_VERSION:
        raise r.fail(
            "format",
            f"is {shown(top.get('format'))}; this asgifuzz reads format {FORMAT_VERSION} "
            "(upgrade asgifuzz, or re-save the case)",
        )
    st = r.obj(top.get("stack", {}), "stack", {"mode", "layers"})
    raw_layers = st.get("layers", [])
    if not isinstance(raw_layers, list) or len(raw_layers) > MAX_LAYERS:
        raise r.fail(
            "stack.layers",
            f"is {shown(raw_layers)}; must be a list of at most {MAX_LAYERS} layers",
        )
    layers = []
    for i, raw in enumerate(raw_layers):
        path = f"stack.layers[{i}]"
        d = r.obj(raw, path, {"kind", "pauses", "options"})
        kind = d.get("kind")
        user = isinstance(kind, str) and kind.startswith("user.")
        if user and not USER_NAME.match(str(kind)[5:]):
            raise r.fail(
                f"{path}.kind",
                f"is {shown(kind)}; a user middleware is 'user.<name>' with an "
                "identifier for a name",
            )
        layers.append(
            Layer(
                kind=str(kind)
                if user
                else r.choice(d, "kind", path, (*_KINDS, *WS_LAYER_KINDS), ""),
                pauses=r.pauses(d, path),
                options=layer_options(r, d.get("options", {}), path, str(kind)),
            )
        )
    stack = Stack(
        layers=tuple(layers),
        mode=r.choice(st, "mode", "stack", STACK_MODES, "starlette"),
    )

    ep = r.obj(top.get("endpoint", {}), "endpoint", {f.name for f in fields(Endpoint)})
    group, compressible = ep.get("group", False), ep.get("compressible", True)
    for name, flag in (("group", group), ("compressible", compressible)):
        if not isinstance(flag, bool):
            raise r.fail(f"endpoint.{name}", f"is {shown(flag)}; must be true or false")
    endpoint = Endpoint(
        kind=r.choice(ep, "kind", "endpoint", ALL_ENDPOINT_KINDS, "plain"),
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
        size=None
        if "size" not in ep
        else r.int_(ep, "size", "endpoint", 0, MAX_RESPONSE_SIZE),
        compressible=compressible,
    )

    rq = r.obj(
        top.get("request", {}),
        "request",
        {"method", "path", "query", "headers", "body", "scheme"},
    )
    headers = _headers(r, rq.get("headers", []))
    chunks = body_from_data(r, rq.get("body", []), MAX_SEGMENTS)
    path = r.str_(rq, "path", "request", "/", max_length=MAX_TARGET)
    if not path.startswith("/"):
        raise r.fail("request.path", f"is {shown(path)}; must start with '/'")
    request = Request(
        method=r.choice(rq, "method", "request", ALL_METHODS, "GET"),
        path=path,
        query=r.str_(rq, "query", "request", max_length=MAX_TARGET, latin1=True),
        headers=headers,
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
        {"name", "send_checkpoints", "receive_checkpoints", "http_version"},
    )
    name = r.choice(sv, "name", "server", SERVERS, "uvicorn")
    server = Server(
        name=name,
        send_checkpoints=r.int_(sv, "send_checkpoints", "server", 0, 100),
        receive_checkpoints=r.int_(sv, "receive_checkpoints", "server", 0, 100),
        http_version=r.choice(
            sv, "http_version", f"server ({name})", HTTP_VERSIONS[name], "1.1"
        ),
    )
    seed = r.int_(top, "seed", "$", 0, 2**64 - 1)
    app = r.str_(top, "app", "$", max_length=64)
    if app and not USER_NAME.match(app):
        raise r.fail(
            "app", f"is {shown(app)}; must be the name of an app (an identifier)"
        )
    scope = r.choice(top, "scope", "$", CASE_SCOPES, "http")
    if "websocket" in top and scope != "websocket":
        raise r.fail(
            "websocket", f'is set on a {scope!r} case; add "scope": "websocket"'
        )
    session = (
        session_from_data(r, top.get("websocket", {}))
        if scope == "websocket"
        else Session()
    )
    lifespan = None
    if "lifespan" in top:
        if app:
            raise r.fail(
                "lifespan",
                "is set with 'app'; a lifespan session runs the model app (an "
                "app's own lifespan runs around each of its runs): drop one",
            )
        lifespan = lifespan_from_data(r, top["lifespan"])
    return Case(
        stack=stack,
        endpoint=endpoint,
        request=request,
        client=client,
        server=server,
        seed=seed,
        app=app,
        scope=scope,
        websocket=session,
        lifespan=lifespan,
    )


def _headers(r: Reader, raw: object) -> tuple[tuple[str, str], ...]:
    """Request headers: [name, value] pairs of latin-1 text, within servers' limits."""
    if not isinstance(raw, list) or len(raw) > MAX_HEADERS:
        raise r.fail(
            "request.headers",
            f"is {shown(raw)}; must be a list of at most {MAX_HEADERS} "
            "[name, value] pairs",
        )
    headers = []
    for i, h in enumerate(raw):
        if not (
            isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
        ):
            raise r.fail(
                "request.headers",
                f"must be a list of [name, value] string pairs; item {i} is {shown(h)}",
            )
        pair = {"name": h[0], "value": h[1]}
        r.str_(
            pair,
            "name",
            f"request.headers[{i}]",
            max_length=MAX_HEADER_NAME,
            latin1=True,
        )
        r.str_(
            pair,
            "value",
            f"request.headers[{i}]",
            max_length=MAX_HEADER_VALUE,
            latin1=True,
        )
        headers.append((h[0], h[1]))
    return tuple(headers)
