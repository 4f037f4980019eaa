"""The case: everything about one run, with a strict JSON form.

A case file can name only asgifuzz's own models (and ``user.<name>`` targets
by name), so loading one never imports anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from asgifuzz._errors import CaseFormatError
from asgifuzz._types import ALL_METHODS
from asgifuzz.models._parts import (
    BACKGROUNDS,
    DISCONNECTS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
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
from asgifuzz.models._reader import Reader

#: Version of the JSON case format; bumped on any incompatible change.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Case:
    """Everything about one run: the app, the request, the client and the server.

    ``seed`` seeds trio's scheduler (its batches of runnable tasks are shuffled);
    asyncio's scheduler is FIFO and ignores it. ``app`` names a user app (allowed
    under that name) that replaces the endpoint: the stack, if any, wraps it.
    """

    # The parts are frozen (ruff sees that only for dataclasses of this module).
    stack: Stack = Stack()  # noqa: RUF009
    endpoint: Endpoint = Endpoint()  # noqa: RUF009
    request: Request = Request()  # noqa: RUF009
    client: Client = Client()  # noqa: RUF009
    server: Server = Server()  # noqa: RUF009
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


def case_from_data(data: object, *, source: str = "<case>") -> Case:
    """Build a `Case` from plain data, refusing anything not in the format.

    Kinds are matched against fixed registries: a case file can name only
    asgifuzz's own models, so loading one never imports anything.
    """
    r = Reader(source)
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
        if user and not USER_NAME.match(str(kind)[5:]):
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
    if app and not USER_NAME.match(app):
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
