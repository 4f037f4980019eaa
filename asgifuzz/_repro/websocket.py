"""A websocket reproducer's server, client and checks: a scripted server of the
case's profile playing the client's steps, mirroring
`asgifuzz._driver.ws_server.FakeWsServer`, and the checks of W1-W4, each a
reading of what the ``Tap`` at every boundary saw (as the oracles read the
recorder's events)."""

from __future__ import annotations

import re

from asgifuzz._driver.server import LIMIT
from asgifuzz._driver.ws_server import IDLE_CLOSE, STEP_PATIENCE, WS_PROFILES, ws_scope
from asgifuzz._repro.checks import check_source, parse_checks
from asgifuzz._repro.render import bytes_lit, lit, render
from asgifuzz.models import Case

WS_SERVER = '''\
# --- The server and the client: a $profile-like server, scripted ---------------

LIMIT = $limit  # virtual seconds after which an app that has not returned hangs
PATIENCE = $patience  # virtual seconds the client waits for the endpoint before a step
SCOPE: Scope = $scope
# The client's script: (what, payload, after how many of the endpoint's frames, code,
# reason); it leaves with a close or a drop (1006), or closes $idle once idle.
STEPS: list[tuple[str, Any, int, int, str]] = $steps
INNER = $inner  # the innermost boundary  #?see_taps
# What $profile does (asgifuzz's profile, measured on the real server): the code of
# a dropped client's websocket.disconnect, whether the client's close code and
# reason and the app's close reason get through, the code the app sees once it
# closed (None: the one the client echoed), what a later receive() gives ("never",
# "same", "lost", "always"), what send() raises once the client is gone / after the
# app's close / for an unoffered subprotocol (None: nothing), the handshake status
# when the app returns / raises without answering, and the close code when it
# returns / raises after accepting.
PROFILE: dict[str, Any] = $profile_data


class ClientDisconnected(OSError):
    """What the server raises from send() once the client is gone (uvicorn)."""


class Disconnected(RuntimeError):
    """What daphne raises from send() after the app closed (autobahn's)."""


class LocalProtocolError(Exception):
    """What uvicorn (wsproto) raises for a subprotocol the client did not offer."""


class UnexpectedMessageError(Exception):
    """What hypercorn raises on an out-of-order message."""


ERRORS = {e.__name__: e for e in (ClientDisconnected, Disconnected, LocalProtocolError)}
ERRORS |= {"UnexpectedMessageError": UnexpectedMessageError}
ERRORS |= {"Exception": Exception, "RuntimeError": RuntimeError}


def fail(error: str | None, why: str) -> None:
    if error is not None:
        raise ERRORS[error](why)


class Server:
    """Both ends of one WebSocket connection, and what the client saw."""

    def __init__(self) -> None:
        # handshake, then open, closed (by the app), rejected (403), denial,
        # denied, error (500).
        self.phase = "handshake"
        self.connected = False
        self.gone = False  # the client has left
        self.left_open = False  # ... an open connection
        self.left: tuple[int, str] | None = None  # its close code and reason
        self.inbox: list[Message] = []  # its frames, not received yet
        self.received: list[Any] = []  # the endpoint's frames it got
        self.server_close: tuple[int, str] | None = None
        self.disconnects = 0  # websocket.disconnect messages given to the app
        self.first: Message = {}  # the first of them
        self.returned = False  # the app returned or raised
        self.hung = False  # the app had not returned after LIMIT
        self.escaped: BaseException | None = None  # what the app raised
        self.changed = anyio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, ready: Callable[[], object], patience: float = math.inf) -> None:
        with anyio.move_on_after(patience):
            while not ready():
                await self.changed.wait()

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            what, _, _, code, reason = STEPS[0]  #?at_connect
            self.leave(what, code, reason)  # right after its handshake request  #?at_connect
            return {"type": "websocket.connect"}
        states = ("handshake", "denial", "open")
        await self.until(lambda: self.inbox or self.gone or self.phase not in states)
        if self.inbox and self.phase == "open":
            return self.inbox.pop(0)
        if not self.disconnects:
            self.disconnects, self.first = 1, self.disconnect()
            return dict(self.first)
        repeat = PROFILE["repeat"]
        dropped = self.left is not None and self.left[0] == 1006
        if repeat == "never" or (repeat == "lost" and (self.disconnects > 1 or dropped)):
            await anyio.sleep_forever()  # $profile gives no more
        self.disconnects += 1
        if repeat == "same":
            return dict(self.first)
        return {"type": "websocket.disconnect", "code": 1005}

    def disconnect(self) -> Message:
        """The first websocket.disconnect: for the app's close, the client's close
        or drop, or a client gone during the handshake."""
        if self.phase == "closed" and self.server_close is not None:
            if PROFILE["closed_code"] is not None:
                return {"type": "websocket.disconnect", "code": PROFILE["closed_code"]}
            return self.with_reason(*self.server_close)
        if self.left is None or not self.left_open:
            return {"type": "websocket.disconnect", "code": 1006}
        if self.left[0] == 1006:
            return {"type": "websocket.disconnect", "code": PROFILE["drop_code"]}
        if not PROFILE["client_code"]:
            return {"type": "websocket.disconnect", "code": 1006}
        return self.with_reason(*self.left)

    def with_reason(self, code: int, reason: str) -> Message:
        message: Message = {"type": "websocket.disconnect", "code": code}
        if PROFILE["client_reason"]:
            message["reason"] = reason
        return message

    async def send(self, message: Message) -> None:
        kind, phase = message.get("type"), self.phase
        if phase == "closed":
            fail(PROFILE["closed_error"], f"{kind!r} after the app closed")
            return
        if self.gone and phase == "open":
            fail(PROFILE["gone_error"], "the client has disconnected")
            return  # nothing reaches a client that is gone
        if phase == "handshake" and kind == "websocket.accept":
            subprotocol = message.get("subprotocol")
            if subprotocol is not None and subprotocol not in SCOPE["subprotocols"]:
                fail(PROFILE["subprotocol_error"], f"Invalid Subprotocol {subprotocol!r}")
            self.phase = "open"
            self.wake()
        elif phase == "handshake" and kind == "websocket.close":
            self.phase = "rejected"
            self.wake()
        elif phase == "handshake" and kind == "websocket.http.response.start":
            self.phase = "denial"
        elif phase == "denial" and kind == "websocket.http.response.body":
            if not message.get("more_body", False):
                self.phase = "denied"
                self.wake()
        elif phase == "open" and kind == "websocket.send":
            data = message.get("bytes")
            self.received.append(data if data is not None else message.get("text", ""))
            self.wake()
        elif phase == "open" and kind == "websocket.close":
            self.phase = "closed"
            reason = (message.get("reason") or "") if PROFILE["close_reason"] else ""
            self.server_close = (int(message.get("code", 1000)), reason)
            self.wake()
        else:
            error = f"Unexpected ASGI message {kind!r} in websocket state {phase!r}."
            raise UnexpectedMessageError(error)  #?hypercorn
            raise RuntimeError(error)  #?!hypercorn

    def app_ended(self, raised: bool) -> None:
        """The app returned or raised: a handshake it never answered ends with the
        profile's status (None: no answer), an open connection closes."""
        if self.phase in ("handshake", "denial"):
            status = PROFILE["raised_status" if raised else "unanswered_status"]
            if status is not None:
                self.phase = "error"
                self.wake()
        elif self.phase == "open" and not self.gone:
            self.phase = "closed"  # the server closes the connection
            self.server_close = (PROFILE["raise_close" if raised else "return_close"], "")
            self.wake()

    def leave(self, what: str, code: int, reason: str) -> None:
        self.gone = True
        self.left_open = self.phase == "open"
        self.left = (1006, "") if what == "drop" else (code, reason)
        self.wake()

    async def client(self) -> None:
        """Each step once the handshake is over and the client has seen ``after``
        of the endpoint's frames (or waited PATIENCE for them)."""
        for what, payload, after, code, reason in STEPS:
            if after < 0:
                return  # it left at the connect (see receive)
            await self.until(lambda: self.phase != "handshake")
            await self.until(
                lambda a=after: len(self.received) >= a or self.phase != "open", PATIENCE
            )
            if self.phase != "open":
                return
            if what in ("close", "drop"):
                self.leave(what, code, reason)
                return
            self.inbox.append({"type": "websocket.receive", what: payload})
            self.wake()
        await self.until(lambda: self.phase != "handshake")
        await self.until(lambda: self.phase != "open", PATIENCE)
        if self.phase == "open":
            self.leave("close", $idle)

    def report(self) -> str:
        return (
            f"phase={self.phase} frames to the client={self.received!r} "
            f"server close={self.server_close} client left={self.left} "
            f"escaped={self.escaped!r} app hung={self.hung}"
        )


async def serve(make_app: Callable[[], ASGIApp]) -> Server:
    """Serve one session: the server calls the app while the client plays its steps."""
    SEEN.clear()  #?seen
    SEEN["received"], SEEN["sent"] = {}, {}  #?see_taps
    SEEN["raised"] = []  #?see_raised
    app = make_app()
    server = Server()
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            try:
                await app(dict(SCOPE), server.receive, server.send)
            except BaseException as exc:  # anyio 3's ExceptionGroup is not an Exception
                if only_cancellations(exc):
                    raise  # the time limit: the app did not return
                server.escaped = exc
            server.returned = True
            server.app_ended(raised=server.escaped is not None)
            tg.cancel_scope.cancel()
    server.hung = limit.cancel_called and not server.returned
    return server'''

#: The checks of the websocket keys (as `asgifuzz._repro.checks.CHECKS`).
WS_CHECKS = """\
## W1:* | taps | every message at every boundary follows the ASGI WebSocket protocol ($tag)
bug = False
for boundary, sent in SEEN["sent"].items():
    received = SEEN["received"][boundary]
    for tag, why in protocol_problems(sent, received, SCOPE["subprotocols"]):
        print(f"{boundary}: {why}")
        bug = bug or tag == "$tag"
return bug
## W2:client | taps | the client's frames reach the endpoint unchanged and in order
given = frames_at(SEEN["received"], "websocket.receive", outer=True)
got = frames_at(SEEN["received"], "websocket.receive", outer=False)
print(f"the server gave the app {given!r}; the endpoint received {got!r}")
return got != given
## W2:endpoint | taps | the endpoint's frames reach the server unchanged and in order
made = frames_at(SEEN["sent"], "websocket.send", outer=False)
sent = frames_at(SEEN["sent"], "websocket.send", outer=True)
print(f"the endpoint sent {made!r}; the server got {sent!r}")
return made != sent
## W3:server | taps | the endpoint's close code and reason reach the server
first = first_close(SEEN["sent"], "websocket.close", outer=False)
then = first_close(SEEN["sent"], "websocket.close", outer=True)
print(f"the endpoint closed with {first}; the server got {then}")
return bool(first) and then != first
## W3:endpoint | taps | the client's close code and reason reach the endpoint
first = first_close(SEEN["received"], "websocket.disconnect", outer=True)
then = first_close(SEEN["received"], "websocket.disconnect", outer=False)
print(f"the server gave the app {first}; the endpoint received {then}")
return bool(first) and then != first
## W4:hang | | the app returns (within $limit virtual seconds)
return server.hung
## W4:* | raised | the app ends cleanly: no $tag escapes it
escaped = server.escaped
print(f"escaped: {escaped!r}; the client had left: {server.gone}")
if escaped is None or any(escaped is e for e in SEEN["raised"]):
    return False
# Once the client is gone, the framework's disconnect signal may end the app.
signal = type(escaped).__name__ in ("WebSocketDisconnect", "ClientDisconnected")
signal = signal or isinstance(escaped, OSError)
return type(escaped).__name__ == "$tag" and not (server.gone and signal)"""

_CHECKS = parse_checks(WS_CHECKS)
#: The keys a websocket script can check, for the error message.
WS_SUPPORTED = (
    "W1:<tag>, W2:client, W2:endpoint, W3:server, W3:endpoint, W4:hang, "
    "W4:<exception type>, "
    "I7:{task, asyncgen, coroutine, <class named in a ResourceWarning>}"
)


def step_literal(step: tuple[str, object, int, int, str]) -> str:
    """A client step as the scripts' ``STEPS`` write it."""
    what, payload, after, code, reason = step
    shown = bytes_lit(payload) if isinstance(payload, bytes) else lit(payload)
    if isinstance(payload, str) and len(payload) > 64 and len(set(payload)) == 1:
        shown = f"{lit(payload[0])} * {len(payload)}"
    return f"({lit(what)}, {shown}, {after}, {code}, {lit(reason)})"


def websocket_check(key: str, case: Case) -> tuple[set[str], str, str]:
    """What the app must record for ``key``, what is expected, and the check
    (a leak's, I7, is the HTTP scripts')."""
    inv, _, tag = key.partition(":")
    if inv == "I7":
        return check_source(key, case)
    if inv == "W4" and case.app:
        raise ValueError(
            f"field 'app' is {case.app!r}: W4 judges your app's exceptions by when "
            "the client's leaving reached it, which a script does not follow; "
            "replay it with asgifuzz replay"
        )
    named = re.fullmatch(r"[A-Z]\w*", tag) is not None
    found = _CHECKS.get(key) or (
        _CHECKS[f"{inv}:*"]
        if (inv == "W4" and named) or (inv == "W1" and tag)
        else None
    )
    if found is None:
        raise ValueError(
            f"no standalone check for websocket key {key!r}; supported keys: "
            f"{WS_SUPPORTED}"
        )
    obs, expected, source = found
    values = {"tag": tag, "limit": f"{LIMIT:g}"}
    run = 'server = run(make_app, backend)\nprint(f"observed: {server.report()}")\n'
    return obs, expected.replace("$tag", tag), run + render(source, set(), **values)


def ws_server_source(case: Case, obs: set[str]) -> str:
    """The scripted server and client of ``case``'s session."""
    name = case.server.name
    profile = WS_PROFILES[name]
    steps = [
        (s.kind, s.payload, s.after, s.code, s.reason) for s in case.websocket.steps
    ]
    conditions = {
        "at_connect": bool(steps) and steps[0][2] < 0,
    }
    fields = (
        "drop_code", "client_code", "client_reason", "close_reason", "closed_code",
        "repeat", "gone_error", "closed_error", "subprotocol_error",
        "unanswered_status", "raised_status", "return_close", "raise_close",
    )  # fmt: skip
    data = "{\n" + "".join(
        f"    {lit(f)}: {lit(getattr(profile, f))},\n" for f in fields
    )
    flags = {name, *(f"see_{o}" for o in obs), *(["seen"] if obs else [])}
    flags |= {c for c, holds in conditions.items() if holds}
    scope = "{\n" + "".join(
        f"    {lit(k)}: {lit(v)},\n" for k, v in ws_scope(case).items()
    )
    return render(
        WS_SERVER,
        flags,
        profile=name,
        limit=f"{LIMIT:g}",
        patience=f"{STEP_PATIENCE:g}",
        scope=scope + "}",
        steps="[\n" + "".join(f"    {step_literal(s)},\n" for s in steps) + "]"
        if steps
        else "[]",
        idle=f"{IDLE_CLOSE[0]}, {lit(IDLE_CLOSE[1])}",
        profile_data=data + "}",
        inner=lit("into the app" if case.app else "into the endpoint"),
    )
