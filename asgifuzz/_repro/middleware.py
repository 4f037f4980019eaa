"""The templates of a reproducer's middleware: a `BaseHTTPMiddleware` subclass
or a pure-ASGI class per layer behaviour, mirroring `asgifuzz.models._middleware`
minus the recording, and Starlette's own middlewares by name."""

from __future__ import annotations

from asgifuzz._repro.encode import encoder_source
from asgifuzz._repro.render import PAUSE, boom, render
from asgifuzz.models import Case, Layer

BHM = f"""\
class $name(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: RequestResponseEndpoint
    ) -> Response:
        {PAUSE.replace("$n", "$before")}  #?before
        return PlainTextResponse("short-circuit", status_code=403)  #?short_circuit
        $boom  #?raise_before
        await request.body()  # e.g. to log it  #?read_body&!see_reads
        body = await request.body()  #?read_body&see_reads
        body = b""  #?read_stream
        async for chunk in request.stream():  #?read_stream
            body += chunk  #?read_stream
        SEEN["reads"].append(("$name", body))  #?reader&see_reads
        await request.is_disconnected()  # the answer is not used  #?poll_disconnect
        try:  #?catch
            response = await call_next(request)  #?catch
        except Exception:  #?catch
            SEEN["handled"] += 1  #?catch&see_handled
            return PlainTextResponse("caught", status_code=502)  #?catch
        return await call_next(request)  #?direct
        await call_next(request)  #?raise_after
        response = await call_next(request)  #?keeps
        {PAUSE.replace("$n", "$after")}  #?after
        $boom  #?raise_after
        response.headers["x-asgifuzz-bhm"] = "1"  #?add_header
        inner = response.body_iterator  #?transform_body
        #?transform_body
        async def swapped() -> AsyncIterator[bytes]:  #?transform_body
            async for chunk in inner:  #?transform_body
                yield chunk.swapcase()  #?transform_body
        #?transform_body
        response.body_iterator = swapped()  #?transform_body
        body = b"".join([chunk async for chunk in response.body_iterator])  #?replace_body
        headers = {{k: v for k, v in response.headers.items() if k != "content-length"}}  #?replace_body
        return Response(  #?replace_body
            body.swapcase(), status_code=response.status_code, headers=headers  #?replace_body
        )  #?replace_body
        SEEN["tasks attached"] += 1  #?background&see_background
        response.background = BackgroundTask(layer_task)  #?background
        return response  #?returns"""

ASGI = f"""\
class $name:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  #?guard
            await self.app(scope, receive, send)  #?guard
            return  #?guard
        {PAUSE.replace("$n", "$before")}  #?before
        response = PlainTextResponse("short-circuit", status_code=403)  #?short_circuit
        await response(scope, receive, send)  #?short_circuit
        $boom  #?raise_before
        # The pure-ASGI form of request.is_disconnected(): a receive() cancelled at  #?poll_disconnect
        # its first checkpoint; a message it did get is replayed to the app.  #?poll_disconnect
        messages: list[Message] = []  #?poll_disconnect
        with anyio.CancelScope() as cancel_scope:  #?poll_disconnect
            cancel_scope.cancel()  #?poll_disconnect
            messages.append(await receive())  #?poll_disconnect
        # Read the whole request body ahead of the app, then replay it.  #?reader
        body = b""  #?reader
        messages: list[Message] = []  #?reader
        while True:  #?reader
            message = await receive()  #?reader
            messages.append(message)  #?reader
            if message["type"] != "http.request":  #?reader
                break  #?reader
            body += message.get("body", b"")  #?reader
            if not message.get("more_body", False):  #?reader
                SEEN["reads"].append(("$name", body))  #?reader&see_reads
                messages = [{{"type": "http.request", "body": body, "more_body": False}}]  #?read_body
                break  #?reader
        #?replays
        async def replay() -> Message:  #?replays
            return messages.pop(0) if messages else await receive()  #?replays
        #?replays
        await self.app(scope, replay, send)  #?replays
        started = False  #?catch
        #?catch
        async def tracking_send(message: Message) -> None:  #?catch
            nonlocal started  #?catch
            started = started or message["type"] == "http.response.start"  #?catch
            await send(message)  #?catch
        #?catch
        try:  #?catch
            await self.app(scope, receive, tracking_send)  #?catch
        except Exception:  #?catch
            if started:  #?catch
                raise  # too late to answer instead  #?catch
            SEEN["handled"] += 1  #?catch&see_handled
            response = PlainTextResponse("caught", status_code=502)  #?catch
            await response(scope, receive, send)  #?catch
        held: list[Message] = []  #?replace_body
        body = bytearray()  #?replace_body
        #?replace_body|before&wraps_send
        async def wrapped_send(message: Message) -> None:  #?wraps_send
            if message["type"] == "http.response.start":  #?add_header|replace_body
                headers = [*message.get("headers", []), (b"x-asgifuzz-asgi", b"1")]  #?add_header
                message = {{**message, "headers": headers}}  #?add_header
                held.append(message)  # sent with the whole body  #?replace_body
                return  #?replace_body
            if message["type"] == "http.response.body":  #?transform_body
                message = {{**message, "body": message.get("body", b"").swapcase()}}  #?transform_body
            if message["type"] == "http.response.body":  #?replace_body
                body.extend(message.get("body", b""))  #?replace_body
                if message.get("more_body", False):  #?replace_body
                    return  #?replace_body
                await send(held.pop())  #?replace_body
                message = {{"type": "http.response.body", "body": bytes(body).swapcase()}}  #?replace_body
            await send(message)  #?wraps_send
        #?wraps_send
        await self.app(scope, receive, wrapped_send)  #?wraps_send
        await self.app(scope, receive, send)  #?passes
        {PAUSE.replace("$n", "$after")}  #?after
        $boom  #?raise_after
        SEEN["tasks attached"] += 1  #?background&see_background
        await layer_task()  # a background task, run after the response  #?background"""

LAYER_TASK = '''\
async def layer_task() -> None:
    """A middleware's background task: a little async work."""
    SEEN["tasks run"] += 1  #?see_background
    await anyio.lowlevel.checkpoint()
    SEEN["tasks finished"] += 1  #?see_background'''


#: Starlette's own middlewares: class and constructor options.
STARLETTE = {
    "gzip": ("GZipMiddleware", ["minimum_size={minimum_size}"]),
    "cors": (
        "CORSMiddleware",
        ["allow_origins=[{origin}]", 'allow_methods=["*"]', 'allow_headers=["*"]'],
    ),
    "trusted_host": ("TrustedHostMiddleware", ["allowed_hosts=[{host}]"]),
    "sessions": ("SessionMiddleware", ['secret_key="asgifuzz"']),
    "https_redirect": ("HTTPSRedirectMiddleware", []),
}
#: Static flags of each behaviour's template.
_BEHAVIOUR_FLAGS = {
    "read_body": {"reader", "replays"},
    "read_stream": {"reader", "replays"},
    "poll_disconnect": {"replays"},
    "add_header": {"wraps_send", "acts_after"},
    "transform_body": {"wraps_send", "acts_after"},
    "replace_body": {"wraps_send", "acts_after"},
    "passthrough": {"passes"},
    "raise_after": {"passes"},
    "background": {"passes", "acts_after"},
    "short_circuit": {"stops"},
    "raise_before": {"stops"},
}


def class_names(layers: tuple[Layer, ...]) -> tuple[list[str], dict[str, Layer]]:
    """A class name per layer, and the classes to write: one per kind and pauses
    (and, for readers, per body they should read: see `expected_bodies`)."""
    names: list[str] = []
    classes: dict[str, tuple[Layer, bool]] = {}
    consumed = False
    for layer in layers:
        if layer.family == "starlette":
            names.append(STARLETTE[layer.behaviour][0])
            continue
        if layer.family == "user":  # imported by the script (`user_imports`)
            names.append(layer.kind.removeprefix("user."))
            continue
        key = (
            _class_key(layer),
            consumed and layer.behaviour.startswith("read"),
        )
        same = [n for n, (la, c) in classes.items() if (_class_key(la), c) == key]
        if not same:
            stem = (
                layer.behaviour.title().replace("_", "").replace("through", "Through")
            )
            stem = {"ws": "Ws", "lifespan": "Lifespan"}.get(layer.family, "") + stem
            stem += "ASGIMiddleware" if layer.family == "asgi" else "Middleware"
            n = sum(1 for la, _ in classes.values() if la.kind == layer.kind)
            same = [stem + (str(n + 1) if n else "")]
            classes[same[0]] = layer, key[1]
        names.append(same[0])
        consumed = consumed or layer.kind == "bhm.read_stream"
    return names, {name: layer for name, (layer, _) in classes.items()}


def _class_key(layer: Layer) -> tuple[object, ...]:
    return (layer.kind, layer.pauses, tuple(sorted(layer.options.items())))


def expected_bodies(case: Case) -> dict[str, bytes]:
    """What each reader should read (policy: nothing below a consumed stream)."""
    names, _ = class_names(case.stack.layers)
    out: dict[str, bytes] = {}
    consumed = False
    for name, layer in zip(names, case.stack.layers, strict=True):
        if layer.behaviour in ("read_body", "read_stream"):
            out[name] = b"" if consumed else case.request.body_bytes
        consumed = consumed or layer.kind == "bhm.read_stream"
    out["endpoint"] = b"" if consumed else case.request.body_bytes
    return out


def layer_source(name: str, layer: Layer, obs: set[str], guard: bool = False) -> str:
    """A layer's class; ``guard``: it passes every scope but ``http`` through."""
    b = layer.behaviour
    if b == "encode":
        return encoder_source(name, layer)
    before, after = layer.pauses
    flags = {b, *_BEHAVIOUR_FLAGS.get(b, ()), *(f"see_{o}" for o in obs)}
    flags |= {"guard"} if guard else set()
    stops = "stops" in flags
    flags |= {"before"} if before else set()
    flags |= {"after"} if after and not stops else set()
    if layer.family == "bhm" and not stops and b not in ("catch", "raise_after"):
        flags.add("keeps" if after or "acts_after" in flags else "direct")
    if not (stops or flags & {"direct"} or b in ("raise_after", "replace_body")):
        flags.add("returns")
    template = BHM if layer.family == "bhm" else ASGI
    raises = boom(name, obs)
    return render(template, flags, name=name, before=before, after=after, boom=raises)
