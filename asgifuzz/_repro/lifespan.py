"""A lifespan session's reproducer: the model app of its `Lifespan`, the
lifespan layers, the server's side of the protocol (mirroring
`asgifuzz._driver.sessions` and `asgifuzz._driver.lifespan`) around the HTTP
script's server for the one request, and the checks of L1-L4."""

from __future__ import annotations

from asgifuzz._driver.sessions import SHUTDOWN_TIMEOUT, STARTUP_TIMEOUT
from asgifuzz._repro.app import app_classes
from asgifuzz._repro.checks import parse_checks
from asgifuzz._repro.render import boom, lit, render
from asgifuzz.models import Case, Layer
from asgifuzz.models._build import layer_name
from asgifuzz.models._lifespan import Lifespan

#: The model app, as `asgifuzz.models._lifespan_app.lifespan_app` makes it.
APP = '''\
@asynccontextmanager  #?starlette
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:  #?starlette
    $startup_boom  #?starlette&startup_fails
    await anyio.sleep_forever()  # startup never completes  #?starlette&startup_hang
    state = $state  #?starlette&startup_complete
    SEEN["written"].update(state)  #?starlette&startup_complete
    yield state  #?starlette&startup_complete
    yield {}  # never reached: it makes lifespan() a generator  #?starlette&!startup_complete
    $shutdown_boom  #?starlette&startup_complete&shutdown_fails
    await anyio.sleep_forever()  # shutdown never completes  #?starlette&startup_complete&shutdown_hang
#?starlette
#?starlette
async def endpoint(request: Request) -> Response:  #?starlette
    SEEN["request state"] = dict(request.scope.get("state", {}))  #?starlette
    return PlainTextResponse("hello")  #?starlette
#?starlette
#?starlette
def model_app() -> ASGIApp:  #?starlette
    routes = [Route("/", endpoint, methods=["$method"])]  #?starlette
    return Starlette(routes=routes, lifespan=lifespan)  #?starlette
async def model_app(scope: Scope, receive: Receive, send: Send) -> None:  #?!starlette
    """A plain ASGI app that speaks the lifespan protocol itself."""  #?raw
    """An app that supports only http: it returns on the lifespan scope."""  #?unsupported&!startup_raise
    """An app that supports only http: it raises on the lifespan scope."""  #?unsupported&startup_raise
    if scope["type"] == "http":  #?!starlette
        SEEN["request state"] = dict(scope.get("state", {}))  #?!starlette
        await PlainTextResponse("hello")(scope, receive, send)  #?!starlette
        return  #?!starlette
    $unsupported_boom  #?unsupported&startup_raise
    await receive()  # lifespan.startup  #?raw
    state = scope.setdefault("state", {})  #?raw&startup_complete
    for key, value in $state.items():  #?raw&startup_complete
        state[key] = SEEN["written"][key] = value  #?raw&startup_complete
    await send({"type": "lifespan.startup.complete"})  #?raw&startup_complete
    await send({"type": "lifespan.startup.failed", "message": $message})  #?raw&startup_fail
    $startup_boom  #?raw&startup_raise
    await anyio.sleep_forever()  # startup never completes  #?raw&startup_hang
    await receive()  # lifespan.shutdown  #?raw&startup_complete
    await send({"type": "lifespan.shutdown.complete"})  #?raw&startup_complete&shutdown_complete
    await send({"type": "lifespan.shutdown.failed", "message": $message})  #?raw&startup_complete&shutdown_fail
    $shutdown_boom  #?raw&startup_complete&shutdown_raise
    await anyio.sleep_forever()  # shutdown never completes  #?raw&startup_complete&shutdown_hang'''

LAYER = """\
class $name:
    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:  # wrong on purpose: the app's lifespan never runs  #?handle
            phase = (await receive())["type"].rpartition(".")[2]  #?handle
            await send({"type": f"lifespan.{phase}.complete"})  #?handle
            if phase == "shutdown":  #?handle
                return  #?handle
        #?wrap
        async def wrapped() -> Message:  #?wrap
            message = await receive()  #?wrap
            if message["type"] == "lifespan.startup" and "state" in scope:  #?wrap
                # Its own startup: a state key of its own.  #?wrap
                value = f"{self.name} of {self.name}"  #?wrap
                scope["state"][self.name] = SEEN["written"][self.name] = value  #?wrap
            return message  #?wrap
        #?wrap
        await self.app(scope, wrapped, send)  #?wrap"""

SESSION = f'''\
# --- The lifespan protocol: the server's side -----------------------------------

STARTUP_TIMEOUT = {STARTUP_TIMEOUT:g}  # virtual seconds the server waits for startup
SHUTDOWN_TIMEOUT = {SHUTDOWN_TIMEOUT:g}  # ... and for shutdown
# The boundaries from the server's inward, as the LifespanTaps name them.
BOUNDARIES = $boundaries
MODEL_STATE = $model_state  # what the app's startup writes, once it ran


class Session:
    """The server's side of the lifespan protocol, then one request."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {{}}  # the lifespan state: startup fills it
        self.started, self.stop, self.done = anyio.Event(), anyio.Event(), anyio.Event()
        self.phase = "startup"
        self.completed = False  # the server was told lifespan.startup.complete
        self.startup_failed = False  # ... lifespan.startup.failed
        self.supported = True  # the app does not raise before startup ends

    async def receive(self) -> Message:
        if self.phase == "startup":
            self.phase = "running"
            return {{"type": "lifespan.startup"}}
        await self.stop.wait()
        if self.phase == "over":  # the protocol has no third message
            await anyio.sleep_forever()
        self.phase = "over"
        return {{"type": "lifespan.shutdown"}}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        self.startup_failed = self.startup_failed or kind == "lifespan.startup.failed"
        self.completed = self.completed or kind == "lifespan.startup.complete"
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            self.started.set()
        else:
            self.done.set()

    async def run(self, app: ASGIApp) -> None:
        scope = {{"type": "lifespan", "asgi": {{"version": "3.0"}}, "state": self.state}}
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            # An app that raises before startup ends does not support lifespan.
            self.supported = self.started.is_set()
        finally:
            self.started.set()
            self.done.set()


async def serve(make_app: Callable[[], ASGIApp]) -> Session:
    """Startup; if the server may serve, the request (with a copy of the
    startup's state), then shutdown."""
    SEEN.clear()
    SEEN["lifespan"], SEEN["written"], SEEN["request state"] = [], {{}}, None
    SEEN["raised"] = []  #?see_raised
    app = make_app()
    session = Session()
    with anyio.move_on_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run, app)
            with anyio.move_on_after(STARTUP_TIMEOUT):
                await session.started.wait()
            if not session.started.is_set():
                SEEN["lifespan"].append(("server", "gives up", None))
            elif not session.startup_failed:  # told it failed, the server stops
                server = Server()
                SCOPE["state"] = dict(session.state)
                tg.start_soon(server.client)
                with server.app_scope:  #?daphne
                    await call_app(app, server)  #?daphne
                await call_app(app, server)  #?!daphne
                if session.supported:
                    session.stop.set()
                    with anyio.move_on_after(SHUTDOWN_TIMEOUT):
                        await session.done.wait()
            tg.cancel_scope.cancel()
    return session'''

#: The checks of the lifespan keys (as `asgifuzz._repro.checks.CHECKS`).
LIFESPAN_CHECKS = """\
## L1:* | lifespan | every layer passes the lifespan messages on unchanged ($tag)
seen = boundaries()
for outer, inner in pairwise(seen):
    answers = unsupported(inner) or unsupported(seen[-1])
    for up in (True, False):
        source, dest = (inner, outer) if up else (outer, inner)
        how = differs(source["sent" if up else "received"], dest["sent" if up else "received"])
        if how and not ((how == "invented" and answers) or (not up and how == "lost")):
            print(f"{outer['name']}: {'up' if up else 'down'}, a message {how}")
            if how == "$tag":
                return True
            break
return False
## L2:* | lifespan | a failing startup is reported as failed to the server ($tag)
seen = boundaries()
app, told = seen[-1], [m["type"] for m in seen[0]["sent"]]
kinds = [m["type"] for m in app["sent"]]
ends = ("lifespan.startup.failed", "lifespan.startup.complete")
first = next((k for k in kinds if k in ends), None)
raised = bool(app["received"]) and app["end"] == "raise"
failed = first == "lifespan.startup.failed" or (first is None and raised)
print(f"the app sent {kinds} and ended with {app['end']}; the server was told {told}")
if not failed:
    return False
if "lifespan.startup.complete" in told:
    return "$tag" == "complete"
hidden = "lifespan.startup.failed" not in told and seen[0]["end"] != "raise"
return hidden and "$tag" == "hidden"
## L3:* | lifespan | what startup wrote into the state reaches the request ($tag)
got = SEEN["request state"]
expected = dict(SEEN["written"])
for key, value in MODEL_STATE.items():
    expected.setdefault(key, value)  # the app's, had its startup run
print(f"startup wrote {expected}; the request's scope['state'] is {got}")
if got is None or not session.completed:
    return False
wrong = [k for k in expected if got.get(k, got) != expected[k]]
# The first key that did not arrive as written: lost, or changed.
return bool(wrong) and ("lost" if wrong[0] not in got else "changed") == "$tag"
## L4:* | lifespan | a layer does not break an app without lifespan support ($tag)
seen = boundaries()
if len(seen) < 2 or not unsupported(seen[-1]):
    return False
told = [m["type"] for m in seen[0]["sent"]]
print(f"the app does not support lifespan; the server was told {told}")
if "lifespan.startup.failed" in told:
    return "$tag" == "failed"
return "$tag" == "hang" and any(kind == "gives up" for _, kind, _ in SEEN["lifespan"])"""

LIFESPAN_HELPERS = {
    "LifespanTap": '''\
class LifespanTap:
    """Records the lifespan messages crossing one boundary, and how the app
    inside it ended; it adds no checkpoint, so it changes no interleaving."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        events = SEEN["lifespan"]

        async def tapped_receive() -> Message:
            message = await receive()
            events.append((self.name, "received", message))
            return message

        async def tapped_send(message: Message) -> None:
            events.append((self.name, "sent", message))
            await send(message)

        try:
            await self.app(scope, tapped_receive, tapped_send)
        except BaseException as exc:
            cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
            events.append((self.name, "cancelled" if cancelled else "raise", None))
            raise
        events.append((self.name, "return", None))''',
    "boundaries": '''\
def boundaries() -> list[dict[str, Any]]:
    """What crossed each boundary, and how the app inside it ended, until the
    server gave up on startup (a cancelled app may report anything)."""
    seen = {n: {"name": n, "sent": [], "received": [], "end": None} for n in BOUNDARIES}
    for name, kind, message in SEEN["lifespan"]:
        if kind == "gives up":
            break
        if kind in ("sent", "received"):
            seen[name][kind].append(message)
        elif seen[name]["end"] is None:
            seen[name]["end"] = kind
    return list(seen.values())''',
    "unsupported": '''\
def unsupported(boundary: dict[str, Any]) -> bool:
    """Whether the app inside ended on the lifespan scope before it received or
    sent anything (it does not support lifespan)."""
    ended = boundary["end"] not in (None, "cancelled")
    return ended and not boundary["sent"] and not boundary["received"]''',
    "differs": '''\
def differs(source: list[Message], dest: list[Message]) -> str:
    """How what reached ``dest`` differs from what ``source`` sent ("": not)."""
    if any(a != b for a, b in zip(source, dest, strict=False)):
        return "changed"
    return "lost" if len(source) > len(dest) else "invented" if len(dest) > len(source) else ""''',
}

_CHECKS = parse_checks(LIFESPAN_CHECKS)
#: The keys a lifespan script can check, for the error message.
LIFESPAN_SUPPORTED = (
    "L1:{changed, lost, invented}, L2:{complete, hidden}, L3:{lost, changed}, "
    "L4:{failed, hang}"
)
_TAGS = {
    "L1": ("changed", "lost", "invented"),
    "L2": ("complete", "hidden"),
    "L3": ("lost", "changed"),
    "L4": ("failed", "hang"),
}


def lifespan_check(key: str, case: Case) -> tuple[set[str], str, str]:
    """What the app must record for ``key``, what is expected, and the check."""
    inv, _, tag = key.partition(":")
    if tag not in _TAGS.get(inv, ()):
        raise ValueError(
            f"no standalone check for key {key!r} of a lifespan session; supported "
            f"keys: {LIFESPAN_SUPPORTED}"
        )
    client, server = case.client, case.server
    if client.disconnect != "never" or server.receive_checkpoints:
        field = "client.disconnect" if client.disconnect != "never" else "server"
        raise ValueError(
            f"field {field!r}: a lifespan script serves its request to a client "
            "that stays, its body all there (replay the case for the rest)"
        )
    obs, expected, source = _CHECKS[f"{inv}:*"]
    run = "session = " if inv == "L3" else ""
    run += "run(make_app, backend)\n"
    return obs, expected.replace("$tag", tag), run + source.replace("$tag", tag)


def _model_state(model: Lifespan) -> dict[str, str]:
    if model.app == "unsupported" or model.startup != "complete":
        return {}
    return {key: f"{key} of the app" for key in model.state}


def lifespan_app_source(case: Case, obs: set[str]) -> str:
    """The session's layers, its model app and ``make_app()``."""
    model = case.lifespan
    assert model is not None  # only sessions come here
    flags = {model.app, f"startup_{model.startup}", f"shutdown_{model.shutdown}"}
    for phase, what in (("startup", model.startup), ("shutdown", model.shutdown)):
        flags |= {f"{phase}_fails"} if what in ("fail", "raise") else set()
    state = {key: f"{key} of the app" for key in model.state}
    app = render(
        APP,
        flags,
        method=case.request.method,
        state=lit(state),
        message=lit(model.message),
        startup_boom=boom(model.message or "lifespan", obs),
        shutdown_boom=boom(model.message or "lifespan", obs),
        unsupported_boom=boom("this app speaks only http", obs),
    )
    names, parts = app_classes(case, obs, lifespan_layer_source)
    parts.append(app)
    lines = ["def make_app() -> ASGIApp:", '    """The app of the failing case."""']
    lines.append(
        "    app: ASGIApp = "
        + ("model_app()" if model.app == "starlette" else "model_app")
    )
    layers = list(zip(names, case.stack.layers, strict=True))
    inner = "into the app"
    for i, (cls, layer) in reversed(list(enumerate(layers))):
        lines.append(f'    app = LifespanTap(app, name="{inner}")')
        extra = f', name="{layer_name(i, layer)}"' if layer.family == "lifespan" else ""
        lines.append(f"    app = {cls}(app{extra})")
        inner = f"into {layer_name(i, layer)}"
    lines.append(f'    return LifespanTap(app, name="{inner}")')
    return "\n\n\n".join([*parts, "\n".join(lines)])


def boundary_names(case: Case) -> list[str]:
    """The LifespanTaps' names, from the server's boundary inward."""
    return [
        *(f"into {layer_name(i, la)}" for i, la in enumerate(case.stack.layers)),
        "into the app",
    ]


def lifespan_layer_source(name: str, layer: Layer) -> str:
    """A ``lifespan.*`` layer's class."""
    return render(LAYER, {layer.behaviour}, name=name)


def session_source(case: Case, obs: set[str]) -> str:
    """The server's side of the lifespan protocol (after the HTTP server)."""
    model = case.lifespan
    assert model is not None  # only sessions come here
    flags = {case.server.name, *(f"see_{o}" for o in obs)}
    names = boundary_names(case)
    shown = lit(names)
    if len(shown) > 60:
        shown = "[\n" + "".join(f"    {lit(n)},\n" for n in names) + "]"
    return render(
        SESSION, flags, boundaries=shown, model_state=lit(_model_state(model))
    )
