"""Standalone reproducers: one failing case as a script that needs only Starlette.

`render_repro` writes the source of a script for one case and one failure key:
the case's middleware and endpoint as user code (`asgifuzz._repro.templates`),
a scripted server and client equal to the driver's for the case's profile and
disconnect schedule, on virtual time, and the check of that one invariant.
``python repro.py [asyncio|trio]`` exits 1 while the bug shows and 0 once it is
fixed: what an upstream bug report needs.
"""

from __future__ import annotations

import re
import textwrap
from string import Template

from asgifuzz._driver.server import (
    DAPHNE_CANCEL_AFTER,
    DISCONNECT_ONCE,
    DROP_BODY_ON_DISCONNECT,
    LIMIT,
    PATIENCE,
    SPEC_VERSIONS,
    body_messages,
)
from asgifuzz._repro.checks import CHECKS, HELPERS
from asgifuzz._repro.templates import (
    app_source,
    expected_bodies,
    imports,
    lit,
    render,
)
from asgifuzz.models import Case
from asgifuzz.models._parts import PASSTHROUGH_KINDS

_RUN = 'server = run(make_app, backend)\nprint(f"observed: {server.report()}")\n'
_LEAKS = {
    "asyncgen": '"Async generator" in text',
    "coroutine": '"never awaited" in text',
}
_VIEW = ("complete", "status", "escaped", "body", "headers")
#: The keys a script can check, for the error message of an unsupported key.
SUPPORTED = (
    "I1:<exception type>, I1:500, I1:incomplete, I2:request-after-body, I3, "
    "I4:response, I4:app, I5:never, I5:blocking, I6:collapsed, I6:wrapped, "
    f"I7:{{{', '.join(_LEAKS)}, <class named in a ResourceWarning>}}, "
    f"I8:{{{', '.join(_VIEW)}}}, I9:endpoint"
)


def _parse(text: str) -> dict[str, tuple[set[str], str, str]]:
    out = {}
    for chunk in text.split("## ")[1:]:
        head, _, source = chunk.partition("\n")
        key, obs, expected = (part.strip() for part in head.split("|"))
        out[key] = ({o for o in obs.split(",") if o}, expected, source.rstrip())
    return out


_CHECKS = _parse(CHECKS)


def _check(key: str, case: Case) -> tuple[set[str], str, str]:
    """What the app must record for ``key``, what is expected, and the check."""
    inv, _, tag = key.partition(":")
    named = re.fullmatch(r"[A-Z]\w*", tag) is not None
    family = {"I1": named, "I7": named or tag in _LEAKS, "I8": tag in _VIEW}
    found = _CHECKS.get(key) or (_CHECKS[f"{inv}:*"] if family.get(inv) else None)
    if found is None:
        raise ValueError(
            f"no standalone check for key {key!r}; supported keys: {SUPPORTED}"
        )
    # As the oracles: keys that cannot show on this case are never reported for it.
    ep, layers = case.endpoint, case.stack.layers
    waits = ep.kind in ("wait_disconnect", "poll_disconnect")
    tasks = ep.background != "none" or any(
        la.behaviour == "background" for la in layers
    )
    transparent = case.client.disconnect == "never" and any(
        la.kind in PASSTHROUGH_KINDS for la in layers
    )
    rules = {
        "I4": (not waits, "its endpoint waits for the disconnect (see I9)"),
        "I5:never": (tasks, "it has no background task"),
        "I5:blocking": (ep.background == "wait", "only a 1-second task can block"),
        "I8": (transparent, "I8 needs a pass-through layer and a client that stays"),
        "I9": (waits, "its endpoint does not wait for the disconnect"),
    }
    applies, why = rules.get(key, rules.get(inv, (True, "")))
    if not applies:
        raise ValueError(f"key {key!r} cannot show on this case: {why}")
    obs, expected, source = found
    handles = any(la.behaviour == "catch" for la in case.stack.layers)
    if "background" in obs and handles:
        # A layer that handled an exception replaced the response, and its tasks.
        obs = {*obs, "handled"}
    bodies = expected_bodies(case)
    reads = lit(bodies)
    if len(reads) > 70:  # one reader a line, as the formatter would put it
        reads = (
            "{\n"
            + "".join(f"    {lit(k)}: {lit(v)},\n" for k, v in bodies.items())
            + "}"
        )
    values = {
        "tag": tag,
        # Servers catch a disconnect error that escapes once the client has left.
        "gone": " and not server.gone" if tag.startswith("ClientDisconnect") else "",
        "match": _LEAKS.get(tag, f'"<{tag}" in text'),
        "expected": reads,
        "patience": f"{PATIENCE:g}",
        "limit": f"{LIMIT:g}",
    }
    source = render(source, {"handles"} if handles else set(), **values)
    return (
        obs,
        Template(expected).substitute(values),
        (_RUN + source if "run(" not in source else source),
    )


def _server_source(case: Case, obs: set[str], view: bool) -> str:
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
    }
    flags = {profile, f"at_{case.client.disconnect}", *(f"see_{o}" for o in obs)}
    flags |= {name for name, holds in conditions.items() if holds}
    return render(
        SERVER,
        flags,
        profile=profile,
        patience=f"{PATIENCE:g}",
        limit=f"{LIMIT:g}",
        asgi=lit({"version": "3.0", **({"spec_version": spec} if spec else {})}),
        method=req.method,
        scheme=req.scheme,
        path=lit(req.path),
        raw_path=lit(req.path.encode()),
        query=lit(req.query.encode("latin-1")),
        headers="[\n" + "".join(f"        {lit(h)},\n" for h in headers) + "    ]"
        if len(lit(headers)) > 64
        else lit(headers),
        port=80 if req.scheme == "http" else 443,
        body="[\n" + "".join(f"    {lit(m)},\n" for m in body_messages(case)) + "]",
        unexpected="UnexpectedMessageError"
        if profile == "hypercorn"
        else "RuntimeError",
        at=case.client.at,
        nth=_ordinal(case.client.at + 1),
        send_checkpoints=case.server.send_checkpoints,
        receive_checkpoints=case.server.receive_checkpoints,
        daphne_cancel=f"{DAPHNE_CANCEL_AFTER:g}",
        seed=case.seed,
    )


def _ordinal(n: int) -> str:
    teens = 10 <= n % 100 <= 20
    return f"{n}{'th' if teens else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def render_repro(case: Case, key: str, *, title: str = "", upstream: str = "") -> str:
    """The source of a standalone script that reproduces ``case`` failing ``key``.

    The script needs only Starlette and anyio (and trio, for ``python repro.py
    trio``); it prints what is expected, what happens and what it observed, and
    exits 1 while the bug shows, 0 when it does not.

    Args:
        case: the failing case.
        key: its failure key, e.g. ``"I1:RuntimeError"`` or ``"I3"``.
        title: one line saying what goes wrong (a corpus entry's title).
        upstream: a link to the upstream issue, if any.

    Raises:
        ValueError: ``key`` has no standalone check (the message lists those
            that do), or the case runs the user's own code.
    """
    if case.app or any(la.family == "user" for la in case.stack.layers):
        raise ValueError(
            "the case runs your own middleware or app, which a standalone script "
            "cannot hold; replay it with asgifuzz replay (and the --middleware/--app "
            "options the corpus entry names), or shrink it to Starlette code by hand"
        )
    obs, expected, source = _check(key, case)
    bug = title or f"the case breaks invariant {key}"
    constants = [("EXPECTED", expected), ("BUG", bug), ("UPSTREAM", upstream)]
    lines = [
        f"{name} = {lit(text)}"
        if len(name + lit(text)) < 86 or len(lit(text)) > 84
        else f"{name} = (\n    {lit(text)}\n)"  # as the formatter puts it
        for name, text in constants
        if text
    ]
    upstream_line = '    print(f"upstream: {UPSTREAM}")\n' if upstream else ""
    sections = [
        "# --- The app: the middleware and the endpoint of the failing case "
        + "-" * 12,
        app_source(case, obs, key.startswith("I8")),
        _server_source(case, obs, key.startswith("I8")),
        BUG_SHOWS + textwrap.indent(source, "    "),
        MAIN.replace("$upstream", upstream_line),
    ]
    if obs:
        sections.insert(
            0,
            "# What the app did, for the check at the end.\nSEEN: dict[str, Any] = {}",
        )
    code = "\n\n\n".join(sections)
    helpers = [h for name, h in HELPERS.items() if re.search(rf"\b{name}[(,]", code)]
    code = "\n\n\n".join([*helpers, code])
    doc = textwrap.fill(bug, 84).replace("\\", "\\\\").replace('"', '\\"')
    header = DOCSTRING.replace("$title", doc).replace("$key", key)
    head = "\n\n".join([header, imports(code), "\n".join(lines)])
    return f"{head}\n\n\n{code}\n"


DOCSTRING = '''\
"""$title

A standalone reproducer written by asgifuzz for its failure $key.

Run: python repro.py [asyncio|trio]   (exit status 1: the bug shows; 0: it does not)

It needs only starlette and anyio (and trio for the trio backend). A scripted server
and client call the app directly, on virtual time: a hang costs no wall time, and
the run replays the interleaving the fuzzer found.
"""

from __future__ import annotations'''

BUG_SHOWS = '''\
def bug_shows(backend: str) -> bool:
    """Run the case on ``backend``; whether the bug shows."""
'''

MAIN = """\
def main() -> int:
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    print(f"Starlette {version('starlette')}, anyio {version('anyio')}, on {backend}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
$upstream    shows = bug_shows(backend)
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())"""

SERVER = '''\
# --- The server and the client: a $profile-like server, scripted ---------------

PATIENCE = $patience  # virtual seconds the client waits for its response
LIMIT = $limit  # virtual seconds after which an app that has not returned hangs
SCOPE: Scope = {
    "type": "http",
    "asgi": $asgi,
    "http_version": "1.1",
    "method": "$method",
    "scheme": "$scheme",
    "path": $path,
    "raw_path": $raw_path,
    "root_path": "",
    "query_string": $query,
    "headers": $headers,
    "client": ("127.0.0.1", 50000),
    "server": ("testserver", $port),
    "extensions": {"http.response.pathsend": {}},  #?granian
    "extensions": {},  #?hypercorn
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
        self.body_messages = 0  #?at_body_message
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
        if message["type"] == "http.response.start" and not self.started:
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
            self.disconnect()  # the client hangs up once it has the headers  #?at_response_start
        elif message["type"] == "http.response.body" and self.started:
            self.response_body += message.get("body", b"")
            self.body_messages += 1  #?at_body_message
            if not message.get("more_body", False):
                self.complete = True
                SEEN["response complete"] = True  #?see_background
                self.wake()
            if self.body_messages > $at:  #?at_body_message
                self.disconnect()  # the client hangs up after the $nth body message  #?at_body_message
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
        )
    #?view
    def view(self) -> dict[str, object]:  #?view
        """What the server saw."""  #?view
        escaped = None if self.escaped is None else type(self.escaped).__name__  #?view
        return {  #?view
            "status": self.status,  #?view
            "headers": sorted(self.headers),  #?view
            "body": self.response_body,  #?view
            "complete": self.complete,  #?view
            "escaped": escaped,  #?view
        }  #?view


def only_cancellations(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation (anyio 3 on trio can wrap one in a group)."""
    members = getattr(exc, "exceptions", None)
    if members:
        return all(only_cancellations(e) for e in members)
    return isinstance(exc, anyio.get_cancelled_exc_class())


async def call_app(app: ASGIApp, server: Server) -> None:
    try:
        await app(dict(SCOPE), server.receive, server.send)
    except BaseException as exc:  # anyio 3's ExceptionGroup is not an Exception
        if only_cancellations(exc):
            raise  # the time limit: the app did not return
        server.escaped = exc
    server.returned = True


async def serve(make_app: Callable[[], ASGIApp]) -> Server:
    """Serve one request: the server calls the app while the client waits."""
    SEEN.clear()  #?seen
    SEEN["reads"] = []  #?see_reads
    SEEN["raised"] = []  #?see_raised
    SEEN["handled"] = 0  #?see_handled
    SEEN["received"] = {}  #?see_received
    SEEN["endpoint ran"] = False  #?see_disconnect
    SEEN["endpoint saw the disconnect"] = False  #?see_disconnect
    SEEN["tasks attached"] = SEEN["tasks run"] = SEEN["tasks finished"] = 0  #?see_background
    SEEN["response complete"] = False  #?see_background
    SEEN["response complete when the endpoint's task ended"] = None  #?see_background
    app = make_app()
    server = Server()
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            tg.start_soon(server.upload)  #?slow_body
            await call_app(app, server)  #?!daphne
            with server.app_scope:  #?daphne
                await call_app(app, server)  #?daphne
            tg.cancel_scope.cancel()
    server.hung = limit.cancel_called and not server.returned
    return server


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


def run(make_app: Callable[[], ASGIApp], backend: str) -> Server:
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
