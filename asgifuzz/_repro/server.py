"""A reproducer's server and client: a scripted server of the case's profile and
the client's disconnect schedule, mirroring `asgifuzz._driver.server`, and
asyncio on virtual time (trio has its ``MockClock``)."""

from __future__ import annotations

from asgifuzz._driver.extensions import EARLY_HINT, PATHSEND, TRAILERS, scope_extensions
from asgifuzz._driver.server import (
    DAPHNE_CANCEL_AFTER,
    DISCONNECT_ONCE,
    DROP_BODY_ON_DISCONNECT,
    LIMIT,
    PATIENCE,
    SPEC_VERSIONS,
    body_messages,
)
from asgifuzz._repro.render import bytes_lit, lit, render
from asgifuzz._types import Message
from asgifuzz.models import Case


def _message(message: Message) -> str:
    """A body message's literal, its body as `bytes_lit` writes it."""
    body = message["body"]
    if len(body) <= 256:
        return lit(message)
    return (
        f'{{"type": "http.request", "body": {bytes_lit(body)}, '
        f'"more_body": {message["more_body"]}}}'
    )


def server_source(case: Case, obs: set[str], view: bool) -> str:
    req, profile = case.request, case.server.name
    spec = SPEC_VERSIONS[profile]
    headers = [(b"host", b"testserver")]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in req.headers
    ]
    if req.body:
        headers.append((b"content-length", str(len(req.body_bytes)).encode()))
    conditions = {
        "drops": profile in DROP_BODY_ON_DISCONNECT,
        "once": profile in DISCONNECT_ONCE,
        "slow_send": case.server.send_checkpoints > 0,
        "slow_body": case.server.receive_checkpoints > 0,
        "seen": bool(obs),
        "view": view,
        "session": case.lifespan is not None,
    }
    flags = {profile, f"at_{case.client.disconnect}", *(f"see_{o}" for o in obs)}
    flags |= {name for name, holds in conditions.items() if holds}
    advertised = scope_extensions(profile, case.server.http_version)
    names = {
        PATHSEND: "adv_pathsend",
        TRAILERS: "adv_trailers",
        EARLY_HINT: "adv_early_hint",
    }
    flags |= {names[n] for n in advertised or () if n in names}
    flags |= {"ext"} if flags & set(names.values()) else set()
    flags |= {"advertises"} if advertised is not None else set()
    return render(
        SERVER,
        flags,
        profile=profile,
        patience=f"{PATIENCE:g}",
        limit=f"{LIMIT:g}",
        asgi=lit({"version": "3.0", **({"spec_version": spec} if spec else {})}),
        http_version=case.server.http_version,
        extensions=lit(advertised),
        method=req.method,
        scheme=req.scheme,
        path=lit(req.path),
        raw_path=lit(req.path.encode()),
        query=lit(req.query.encode("latin-1")),
        headers="[\n" + "".join(f"        {lit(h)},\n" for h in headers) + "    ]"
        if len(lit(headers)) > 64
        else lit(headers),
        port=80 if req.scheme == "http" else 443,
        body="[\n"
        + "".join(f"    {_message(m)},\n" for m in body_messages(case))
        + "]",
        unexpected="UnexpectedMessageError"
        if profile == "hypercorn"
        else "RuntimeError",
        at=case.client.at,
        nth=_ordinal(case.client.at + 1),
        send_checkpoints=case.server.send_checkpoints,
        receive_checkpoints=case.server.receive_checkpoints,
        daphne_cancel=f"{DAPHNE_CANCEL_AFTER:g}",
    )


def virtual_time(case: Case, result: str) -> str:
    """The script's virtual time, and ``run()``, which returns a ``result``."""
    return VIRTUAL_TIME.replace("$seed", str(case.seed)).replace("$result", result)


def _ordinal(n: int) -> str:
    teens = 10 <= n % 100 <= 20
    return f"{n}{'th' if teens else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


SERVER = '''\
# --- The server and the client: a $profile-like server, scripted ---------------

PATIENCE = $patience  # virtual seconds the client waits for its response
LIMIT = $limit  # virtual seconds after which an app that has not returned hangs
SCOPE: Scope = {
    "type": "http",
    "asgi": $asgi,
    "http_version": "$http_version",
    "method": "$method",
    "scheme": "$scheme",
    "path": $path,
    "raw_path": $raw_path,
    "root_path": "",
    "query_string": $query,
    "headers": $headers,
    "client": ("127.0.0.1", 50000),
    "server": ("testserver", $port),
    "extensions": $extensions,  #?advertises
}
# The request body, as $profile delivers it.
BODY: list[Message] = $body
#?strict
#?strict
class ClientDisconnected(OSError):  #?strict
    """What a strict (ASGI 2.4) server raises from send() once the client is gone."""  #?strict
#?hypercorn
#?hypercorn
class UnexpectedMessageError(Exception):  #?hypercorn
    """What hypercorn raises on an out-of-order message."""  #?hypercorn


class Server:
    """The server and the client of one request, and what the server saw."""

    def __init__(self) -> None:
        self.body = [dict(message) for message in BODY]  # not received yet
        self.arrived = 0  # of those, how many have arrived  #?slow_body
        self.receives = 0  #?at_receive
        self.disconnects_sent = 0  #?once
        self.body_messages = 0  #?at_body_message|ext
        self.body_done = False  #?ext
        self.trailers_expected = False  # the start announced trailers  #?adv_trailers
        self.trailers: list[tuple[bytes, bytes]] = []  #?adv_trailers
        self.pathsend: str | None = None  # the path of a pathsend  #?adv_pathsend
        self.hints: list[bytes] = []  # the early hints' links  #?adv_early_hint
        self.app_scope = anyio.CancelScope()  #?daphne
        self.gone = False  # the client has disconnected
        self.left_early = False  # ... before the response was complete
        self.timed_out = False  # ... because its patience ran out
        self.started = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.response_body = b""
        self.complete = False  # the server has the whole response
        self.returned = False  # the app returned or raised
        self.hung = False  # the app had not returned after LIMIT
        self.escaped: BaseException | None = None  # what the app raised
        self.changed = anyio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def disconnect(self) -> None:
        if not self.gone:
            self.gone = True
            SEEN["client gone"] = True  #?see_streamed
            self.left_early = not self.complete
            self.wake()

    async def receive(self) -> Message:
        self.receives += 1  #?at_receive
        if self.receives > $at:  #?at_receive
            self.disconnect()  # the client is gone by the app's $nth receive()  #?at_receive
        if self.gone:  #?drops
            self.body.clear()  # $profile drops the unread body  #?drops
        while self.body and not self.arrived and not self.gone:  #?slow_body
            await self.changed.wait()  # the rest of the body is on its way  #?slow_body
            if self.gone:  #?drops&slow_body
                self.body.clear()  #?drops&slow_body
        if self.body and self.arrived:  #?slow_body
            self.arrived -= 1  #?slow_body
            return self.body.pop(0)  #?slow_body
        if self.body:  #?!slow_body
            return self.body.pop(0)  #?!slow_body
        while not (self.gone or self.complete):
            await self.changed.wait()
        if self.disconnects_sent:  #?once
            await anyio.sleep_forever()  # $profile sends http.disconnect once  #?once
        self.disconnects_sent += 1  #?once
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone:
            raise ClientDisconnected("the client has disconnected")  #?strict
            if self.complete:  #?granian
                error = "ASGI flow error: Transport not initialized or closed"  #?granian
                raise RuntimeError(error)  # as granian words it  #?granian
            return  # nothing reaches a client that is gone  #?!strict
        if self.complete:
            return  # daphne ignores it  #?daphne
            raise $unexpected(  #?!daphne
                f"Unexpected ASGI message {message['type']!r} sent, "  #?!daphne
                "after response already completed."  #?!daphne
            )  #?!daphne
        kind = message["type"]  #?ext
        if message["type"] == "http.response.start" and not self.started:
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
            self.trailers_expected = bool(message.get("trailers", False))  #?adv_trailers
            self.disconnect()  # the client hangs up once it has the headers  #?at_response_start
        elif message["type"] == "http.response.body" and self.started:  #?!ext
        elif message["type"] == "http.response.body" and self.started and not self.body_done:  #?ext
            self.response_body += message.get("body", b"")
            SEEN["delivered"] = self.response_body  #?see_streamed
            self.body_messages += 1  #?at_body_message|ext
            if not message.get("more_body", False):
                self.body_done = True  #?ext
                self.complete = True  #?!adv_trailers
                self.complete = not self.trailers_expected  # trailers follow  #?adv_trailers
                SEEN["response complete"] = self.complete  #?see_background
                self.wake()
            if self.body_messages > $at:  #?at_body_message
                self.disconnect()  # the client hangs up after the $nth body message  #?at_body_message
        elif kind == "http.response.trailers" and self.trailers_expected and self.body_done:  #?adv_trailers
            self.trailers += message.get("headers", [])  #?adv_trailers
            self.complete = not message.get("more_trailers", False)  #?adv_trailers
            SEEN["response complete"] = self.complete  #?adv_trailers&see_background
            self.wake()  #?adv_trailers
        elif kind == "http.response.pathsend" and self.started and not self.body_messages:  #?adv_pathsend
            self.pathsend = message["path"]  # the server reads the file  #?adv_pathsend
            self.response_body = Path(message["path"]).read_bytes()  # noqa: ASYNC240  #?adv_pathsend
            self.body_messages += 1  #?adv_pathsend
            self.body_done = True  #?adv_pathsend
            self.complete = True  #?adv_pathsend&!adv_trailers
            self.complete = not self.trailers_expected  #?adv_pathsend&adv_trailers
            SEEN["response complete"] = self.complete  #?adv_pathsend&see_background
            self.wake()  #?adv_pathsend
        elif kind == "http.response.early_hint" and not self.body_messages:  #?adv_early_hint
            self.hints += message.get("links", [])  #?adv_early_hint
        else:
            raise $unexpected(
                f"Unexpected ASGI message {message['type']!r} sent (started={self.started})."
            )
        await checkpoints($send_checkpoints)  # a slow send()  #?slow_send

    async def upload(self) -> None:  #?slow_body
        """A slow upload: a body message every few checkpoints."""  #?slow_body
        for _ in BODY:  #?slow_body
            if self.gone:  #?slow_body
                return  #?slow_body
            await checkpoints($receive_checkpoints)  #?slow_body
            self.arrived += 1  #?slow_body
            self.wake()  #?slow_body
    #?slow_body
    async def client(self) -> None:
        """The client waits for its response, PATIENCE virtual seconds at most."""
        await checkpoints($at)  # the client hangs up after a while  #?at_checkpoints
        self.disconnect()  #?at_checkpoints
        with anyio.move_on_after(PATIENCE):
            while not (self.gone or self.complete):
                await self.changed.wait()
        if not (self.gone or self.complete):
            self.timed_out = True
            self.disconnect()
        while not self.gone:  #?daphne
            await self.changed.wait()  #?daphne
        await anyio.sleep($daphne_cancel)  # then daphne cancels the app  #?daphne
        self.app_scope.cancel()  #?daphne

    def report(self) -> str:
        return (
            f"status={self.status} body={self.response_body[:60]!r} "
            f"complete={self.complete} escaped={self.escaped!r} "
            f"client gone={self.gone} timed out={self.timed_out} app hung={self.hung}"
            f" trailers={self.trailers}"  #?adv_trailers
        )
    #?view
    def view(self) -> dict[str, object]:  #?view
        """What the server saw."""  #?view
        escaped = None if self.escaped is None else type(self.escaped).__name__  #?view
        # Of several exceptions raised on purpose, one may win, or all come out  #?view&see_raised
        # grouped: either is fair, so what escaped is named alike.  #?view&see_raised
        ours = {id(m) for e in SEEN["raised"] for m in leaves(e)}  #?view&see_raised
        several = self.escaped is not None and len(ours) > 1  #?view&see_raised
        if several and all(id(m) in ours for m in leaves(self.escaped)):  #?view&see_raised
            escaped = "some of the exceptions raised on purpose"  #?view&see_raised
        return {  #?view
            "status": self.status,  #?view
            "headers": sorted(self.headers),  #?view
            "body": self.response_body,  #?view
            "complete": self.complete,  #?view
            "escaped": escaped,  #?view
        }  #?view


async def call_app(app: ASGIApp, server: Server) -> None:
    try:
        await app(dict(SCOPE), server.receive, server.send)
    except BaseException as exc:  # anyio 3's ExceptionGroup is not an Exception
        if only_cancellations(exc):
            raise  # the time limit: the app did not return
        server.escaped = exc
    server.returned = True


async def serve(make_app: Callable[[], ASGIApp]) -> Server:  #?!session
    """Serve one request: the server calls the app while the client waits."""  #?!session
    SEEN.clear()  #?seen&!session
    SEEN["reads"] = []  #?see_reads&!session
    SEEN["raised"] = []  #?see_raised&!session
    SEEN["handled"] = 0  #?see_handled&!session
    SEEN["received"] = {}  #?see_received&!session
    SEEN["endpoint ran"] = False  #?see_disconnect&!session
    SEEN["endpoint saw the disconnect"] = False  #?see_disconnect&!session
    SEEN["tasks attached"] = SEEN["tasks run"] = SEEN["tasks finished"] = 0  #?see_background&!session
    SEEN["response complete"] = False  #?see_background&!session
    SEEN["trailers sent"] = []  #?see_trailers&!session
    SEEN["response complete when the endpoint's task ended"] = None  #?see_background&!session
    SEEN["stream"] = []  # (what the server had, the client gone) per chunk made  #?see_streamed&!session
    SEEN["delivered"], SEEN["client gone"] = b"", False  #?see_streamed&!session
    app = make_app()  #?!session
    server = Server()  #?!session
    with anyio.move_on_after(LIMIT) as limit:  #?!session
        async with anyio.create_task_group() as tg:  #?!session
            tg.start_soon(server.client)  #?!session
            tg.start_soon(server.upload)  #?slow_body&!session
            await call_app(app, server)  #?!daphne&!session
            with server.app_scope:  #?daphne&!session
                await call_app(app, server)  #?daphne&!session
            tg.cancel_scope.cancel()  #?!session
    server.hung = limit.cancel_called and not server.returned  #?!session
    return server  #?!session'''

#: The script's virtual time, and run(): shared by every kind of script.
VIRTUAL_TIME = '''\
# --- Virtual time --------------------------------------------------------------

SEED = $seed  # seeds trio's scheduler


class VirtualTimeSelector(selectors.DefaultSelector):
    """Never sleeps: when no task can run, it moves the clock to the next timer."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self.virtual_loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer and no task can run: a deadlock
            for task in asyncio.all_tasks(self.virtual_loop):
                task.cancel()
        else:
            self.virtual_loop.now += timeout
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """asyncio on virtual time, like trio's MockClock(autojump_threshold=0)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=VirtualTimeSelector(self))

    def time(self) -> float:
        return self.now


def run(make_app: Callable[[], ASGIApp], backend: str) -> $result:
    """Serve one request on ``backend`` (asyncio or trio), on virtual time."""
    if backend == "trio":
        import trio
        import trio.testing
        from trio._core import _run

        # trio runs each batch of ready tasks in random order. In its deterministic
        # mode (private; trio's Hypothesis plugin switches it on), seeded with the
        # case's seed, it replays the interleaving the fuzzer found.
        _run._ALLOW_DETERMINISTIC_SCHEDULING = True
        _run._r.seed(SEED)
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(serve, make_app, clock=clock)
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(serve(make_app))'''
