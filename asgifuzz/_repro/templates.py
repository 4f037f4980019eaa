"""The renderer of standalone reproducers, and the templates of their app side.

A template reads like the code it makes. A line that ends in a ``#?`` marker is
optional: ``#?a&b|!c`` keeps it when flags ``a`` and ``b`` are set, or ``c`` is
not; a marker alone stands for a blank line. The flags name what the case holds
(a layer's behaviour, the endpoint's kind, the server's profile, the client's
disconnect schedule) and what the check records (``see_reads``, ...: the
observations a script keeps in its ``SEEN`` dict), so that a script holds only
the branches its case takes. The app's templates mirror the models
(`asgifuzz.models._middleware`, `._endpoint`) minus the recording; the server's
(in `asgifuzz._repro.script`) mirror the driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from string import Template

from asgifuzz.models import Case, Endpoint, Layer
from asgifuzz.models._parts import PASSTHROUGH_KINDS

_MARKER = re.compile(r"\s*#\?([\w|&!]+)$")


def render(template: str, flags: Iterable[str], **values: object) -> str:
    """Keep the lines whose markers hold, then substitute ``$values``.

    A value that stands alone on its line may hold several lines of code.
    """
    on = set(flags)

    def holds(term: str) -> bool:
        return term[1:] not in on if term.startswith("!") else term in on

    kept = []
    for line in template.splitlines():
        marker = _MARKER.search(line)
        if marker is not None:
            alternatives = marker.group(1).split("|")
            if not any(all(map(holds, alt.split("&"))) for alt in alternatives):
                continue
            line = line[: marker.start()]
        name = line.strip()[1:]
        if line.strip().startswith("$") and name in values:
            pad = line[: len(line) - len(line.lstrip())]
            kept += [pad + v for v in str(values.pop(name)).splitlines()]
        else:
            kept.append(line)
    return Template("\n".join(kept)).substitute(values)


def lit(value: object) -> str:
    """``repr``, with double quotes (the scripts' style) where that is a plain swap."""
    text = repr(value)
    return text if '"' in text else text.replace("'", '"')


PAUSE = "await checkpoints($n)  # the interleaving the fuzzer found"

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

ENDPOINT = f"""\
async def endpoint(request: Request) -> Response:
    {PAUSE.replace("$n", "$before")}  #?before
    SEEN["endpoint ran"] = True  #?see_disconnect
    SEEN["tasks attached"] += 1  #?bg&see_background
    background = BackgroundTask(endpoint_task)  #?bg
    $boom  #?raise
    #?streams
    async def chunks() -> AsyncIterator[bytes]:  #?streams
        for i in range($chunks):  #?some_chunks
            if i:  #?interval
                await anyio.sleep($interval)  # virtual seconds between chunks  #?interval
            yield b"data: %d\\n\\n" % i  #?some_chunks
            {PAUSE.replace("$n", "$after")}  #?some_chunks&after
        $boom_stream  #?raise_streaming
        return  # an empty stream  #?no_chunks&stream
        yield b""  # never reached: it makes chunks() an async generator  #?no_chunks
    #?streams
    return StreamingResponse(chunks(), media_type="$media_type"$bg)  #?streams
    body = await request.body()  #?echo&!respond
    body = b""  #?stream_body&!respond
    async for chunk in request.stream():  #?stream_body&!respond
        body += chunk  #?stream_body&!respond
    try:  #?respond
        body = await request.body()  #?echo&respond
        body = b""  #?stream_body&respond
        async for chunk in request.stream():  #?stream_body&respond
            body += chunk  #?stream_body&respond
    except ClientDisconnect:  #?respond
        return PlainTextResponse("client gone", status_code=400$bg)  #?respond
    SEEN["reads"].append(("endpoint", body))  #?reads_body&see_reads
    while not await request.is_disconnected():  # noqa: ASYNC110 (it polls)  #?poll_disconnect
        await anyio.sleep(1)  #?poll_disconnect
    while (await request.receive())["type"] != "http.disconnect":  #?wait_disconnect
        pass  #?wait_disconnect
    SEEN["endpoint saw the disconnect"] = True  #?waits&see_disconnect
    return PlainTextResponse("bye"$bg)  #?waits
    {PAUSE.replace("$n", "$after")}  #?after_return
    return PlainTextResponse(hashlib.sha256(body).hexdigest()$bg)  #?reads_body
    return PlainTextResponse("hello"$status$bg)  #?plain
    return JSONResponse({{"ok": True}}$bg)  #?json
    return Response(status_code=$code$bg)  #?empty"""

ENDPOINT_TASK = '''\
async def endpoint_task() -> None:
    """The endpoint's background task."""
    SEEN["tasks run"] += 1  #?see_background
    $boom_task  #?bg_raise
    await anyio.sleep(1)  # one virtual second of work  #?bg_wait
    await anyio.lowlevel.checkpoint()  # a little async work  #?bg_checkpoint
    SEEN["tasks finished"] += 1  #?see_background&!bg_raise
    ended = "response complete when the endpoint's task ended"  #?see_background&!bg_raise
    SEEN[ended] = SEEN["response complete"]  #?see_background&!bg_raise'''

SYNC_ENDPOINT = '''\
def endpoint(request: Request) -> Response:
    """A sync endpoint: Starlette runs it with anyio.to_thread.run_sync."""
    SEEN["tasks attached"] += 1  #?bg&see_background
    return PlainTextResponse("sync"$bg)


async def run_sync_in_loop(func: Any, *args: Any, **kwargs: Any) -> Any:
    """anyio.to_thread.run_sync, in the event loop: on virtual time the clock would
    jump to the client's patience while a real worker thread works."""
    await anyio.lowlevel.checkpoint()  # the real one is a checkpoint too
    return func(*args)


anyio.to_thread.run_sync = run_sync_in_loop'''

#: Helpers a script may use, by name; each is written out when the script uses it.
IMPORTS = """\
import asyncio
import gc
import hashlib
import selectors
import sys
import warnings
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send"""


#: Starlette's own middlewares: class and constructor options.
_STARLETTE = {
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
            names.append(_STARLETTE[layer.behaviour][0])
            continue
        key = (
            (layer.kind, layer.pauses),
            consumed and layer.behaviour.startswith("read"),
        )
        same = [n for n, (la, c) in classes.items() if ((la.kind, la.pauses), c) == key]
        if not same:
            stem = (
                layer.behaviour.title().replace("_", "").replace("through", "Through")
            )
            stem += "Middleware" if layer.family == "bhm" else "ASGIMiddleware"
            n = sum(1 for la, _ in classes.values() if la.kind == layer.kind)
            same = [stem + (str(n + 1) if n else "")]
            classes[same[0]] = layer, key[1]
        names.append(same[0])
        consumed = consumed or layer.kind == "bhm.read_stream"
    return names, {name: layer for name, (layer, _) in classes.items()}


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


def _boom(origin: str, obs: set[str], group: bool = False) -> str:
    """The code that raises an exception on purpose (remembered if checked)."""
    exc, lines = f"Boom({lit(origin)})", []
    if group:
        exc, lines = 'ExceptionGroup("one error", [error])', [f"error = {exc}"]
    return "\n".join([*lines, f"raise {f'raised({exc})' if 'raised' in obs else exc}"])


def _layer_source(name: str, layer: Layer, obs: set[str]) -> str:
    b = layer.behaviour
    before, after = layer.pauses
    flags = {b, *_BEHAVIOUR_FLAGS.get(b, ()), *(f"see_{o}" for o in obs)}
    stops = "stops" in flags
    flags |= {"before"} if before else set()
    flags |= {"after"} if after and not stops else set()
    if layer.family == "bhm" and not stops and b not in ("catch", "raise_after"):
        flags.add("keeps" if after or "acts_after" in flags else "direct")
    if not (stops or flags & {"direct"} or b in ("raise_after", "replace_body")):
        flags.add("returns")
    template = BHM if layer.family == "bhm" else ASGI
    boom = _boom(name, obs)
    return render(template, flags, name=name, before=before, after=after, boom=boom)


def _endpoint_source(ep: Endpoint, obs: set[str]) -> str:
    kind, (before, after) = ep.kind, ep.pauses
    bg = ep.background != "none" and kind != "raise"
    reads = kind in ("echo", "stream_body")
    streams = kind in ("stream", "raise_streaming")
    conditions = {
        "before": before > 0,
        "after": after > 0,
        "after_return": after > 0 and (reads or kind in ("plain", "json", "empty")),
        "bg": bg,
        "streams": streams,
        "some_chunks": streams and ep.chunks > 0,
        "no_chunks": streams and ep.chunks == 0,
        "interval": streams and ep.interval > 0 and ep.chunks > 1,
        "reads_body": reads,
        "respond": reads and ep.on_disconnect == "respond",
        "waits": kind in ("poll_disconnect", "wait_disconnect"),
    }
    flags = {kind, f"bg_{ep.background}", *(f"see_{o}" for o in obs)}
    flags |= {name for name, holds in conditions.items() if holds}
    values = {
        "before": before,
        "after": after,
        "bg": ", background=background" if bg else "",
        "boom": _boom("the endpoint", obs, ep.group),
        "boom_stream": _boom("the endpoint (while streaming)", obs, ep.group),
        "boom_task": _boom("the endpoint's background task", obs),
        "chunks": ep.chunks,
        "interval": ep.interval,
        "media_type": ep.media_type,
        "status": "" if ep.status == 200 else f", status_code={ep.status}",
        "code": ep.status,
    }
    task = render(ENDPOINT_TASK, flags, **values) + "\n\n\n" if bg else ""
    if kind == "sync":
        values["bg"] = ", background=BackgroundTask(endpoint_task)" if bg else ""
        return task + render(SYNC_ENDPOINT, flags, **values)
    return task + render(ENDPOINT, flags, **values)


def _call(func: str, args: list[str], column: int, indent: int) -> str:
    """``func(args)`` on one line, or one argument a line if that is too long."""
    line = f"{func}({', '.join(args)})"
    if column + len(line) <= 88:
        return line
    pad = " " * (indent + 4)
    return f"{func}(\n" + "".join(f"{pad}{a},\n" for a in args) + " " * indent + ")"


def _app_factory(
    case: Case, layers: list[tuple[str, Layer]], watch: bool, name: str
) -> str:
    """A function ``name()`` that builds the app in the case's stack mode."""
    doc = (
        "The same app without its pass-through layers, which should change nothing."
        if "without" in name
        else "The app of the failing case."
    )
    method = case.request.method
    lines = [f"def {name}() -> ASGIApp:", f'    """{doc}"""']
    lines.append(f'    routes = [Route("/", endpoint, methods=["{method}"])]')
    stack = []  # (class, constructor arguments), outermost first
    for i, (cls, layer) in enumerate(layers):
        stack += [("Watch", [f'name="into layer {i} ({cls})"'])] if watch else []
        options = _STARLETTE[layer.behaviour][1] if layer.family == "starlette" else []
        values = {  # as `starlette_middleware` reads them; quoted, never pasted
            "minimum_size": int(layer.options.get("minimum_size", 0)),
            "origin": lit(str(layer.options.get("origin", "*"))),
            "host": lit(str(layer.options.get("host", "testserver"))),
        }
        stack.append((cls, [option.format(**values) for option in options]))
    if case.stack.mode == "starlette":
        stack += [("Watch", ['name="into ExceptionMiddleware"'])] if watch else []
        entries = "".join(
            f"        {_call('Middleware', [c, *a], 8, 8)},\n" for c, a in stack
        )
        lines.append(
            f"    middleware = [\n{entries}    ]" if stack else "    middleware = []"
        )
        app = "Starlette(routes=routes, middleware=middleware)"
        if not watch:
            return "\n".join([*lines, f"    return {app}"])
        lines += [
            f"    app = {app}",
            '    return Watch(app, name="into ServerErrorMiddleware")',
        ]
        return "\n".join(lines)
    stack += [("Watch", ['name="into Starlette"'])] if watch else []
    if not stack:
        return "\n".join([*lines, "    return Starlette(routes=routes)"])
    lines.append("    app: ASGIApp = Starlette(routes=routes)")
    lines += (
        ["    # Wrapped by hand, innermost first: Outer(Inner(app))."] if layers else []
    )
    *inner, outer = reversed(stack)
    lines += [f"    app = {_call(c, ['app', *a], 10, 4)}" for c, a in inner]
    return "\n".join(
        [*lines, f"    return {_call(outer[0], ['app', *outer[1]], 11, 4)}"]
    )


def app_source(case: Case, obs: set[str], without_passthrough: bool) -> str:
    """The app's middleware classes, endpoint and ``make_app()`` (and, with
    ``without_passthrough``, ``make_app_without_passthrough()``)."""
    names, classes = class_names(case.stack.layers)
    parts = []
    if any(la.behaviour == "background" for la in classes.values()):
        parts.append(render(LAYER_TASK, {f"see_{o}" for o in obs}))
    parts += [_layer_source(name, layer, obs) for name, layer in classes.items()]
    parts.append(_endpoint_source(case.endpoint, obs))
    stack = list(zip(names, case.stack.layers, strict=True))
    parts.append(_app_factory(case, stack, "received" in obs, "make_app"))
    if without_passthrough:
        kept = [(n, la) for n, la in stack if la.kind not in PASSTHROUGH_KINDS]
        parts.append(_app_factory(case, kept, False, "make_app_without_passthrough"))
    return "\n\n\n".join(parts)


def imports(code: str) -> str:
    """The lines of `IMPORTS` that ``code`` needs, trimmed to the names it uses."""
    out = []
    for line in IMPORTS.splitlines():
        if not line or line.startswith("import "):
            module = line.removeprefix("import ")
            if not line or re.search(rf"(?<![\w.]){re.escape(module)}\.", code):
                out.append(line)  # (the blank line parts the standard library's)
            continue
        head, _, names = line.partition(" import ")
        used = [n for n in names.split(", ") if re.search(rf"(?<![\w.\"]){n}\b", code)]
        if used:
            out.append(f"{head} import {', '.join(used)}")
    return "\n".join(out).strip("\n")
