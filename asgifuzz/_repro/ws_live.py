"""Standalone reproducers of websocket cases on a real server: ``asgifuzz repro
ENTRY --server uvicorn`` for a websocket case.

`render_ws_live` writes a script that needs Starlette, the server and wsproto
(hypercorn's dependency, and the websocket implementation uvicorn's measured
profile runs): the case's app with a ``Tap`` at every boundary (as the scripted
reproducer's), served by the real server in a thread on a free loopback port,
and a real WebSocket client over a socket (wsproto, as
`asgifuzz._confirm.ws_client`) that plays the case's handshake and steps with
wall-clock bounds. The checks are the scripted reproducer's
(`asgifuzz._repro.websocket`), read from what the taps saw while the real
server ran the app; the script prints what the client saw too.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from asgifuzz._driver.ws_server import IDLE_CLOSE
from asgifuzz._repro.app import app_source
from asgifuzz._repro.live_head import live_script
from asgifuzz._repro.render import lit, render
from asgifuzz._repro.user import user_imports
from asgifuzz._repro.websocket import step_literal, websocket_check
from asgifuzz._repro.ws_helpers import WS_HELPERS
from asgifuzz.models import Case

#: The keys a real-server websocket script checks (the scripted ones a real
#: server can run; W4 on the user's app and the leaks are judged in-process).
WS_LIVE_KEYS = (
    "W1:<tag>, W2:client, W2:endpoint, W3:server, W3:endpoint, W4:hang, "
    "W4:<exception type>"
)

WS_SERVE = '''\
# --- A real server and a real client -------------------------------------------

TIMEOUT = 2.0  # wall-clock seconds the client waits for the server at each step
PATH = $path
SUBPROTOCOLS: list[str] = $subprotocols
HEADERS: list[tuple[bytes, bytes]] = $headers
# The client's script: (what, payload, after how many of the endpoint's frames, code,
# reason); it leaves with a close or a drop (no close frame), or closes $idle once
# idle. A step with after=-1 leaves right after the handshake request (a drop: no
# close frame can come before the handshake's answer).
STEPS: list[tuple[str, Any, int, int, str]] = $steps
INNER = $inner  # the innermost boundary
SCOPE: Scope = {}  # the websocket scope the real server gave the app
ENDED = threading.Event()  # the app returned or raised
ESCAPED: list[BaseException] = []  # what it raised


def watched(app: ASGIApp) -> ASGIApp:
    """``app``, with GET /.ready answered here (the client waits for it), and
    what escapes a websocket session kept."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/.ready":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        SCOPE.update(scope)
        SEEN["received"], SEEN["sent"], SEEN["raised"] = {}, {}, []
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            ESCAPED.append(exc)
            raise
        finally:
            ENDED.set()

    return wrapped


LISTENING: list[socket.socket] = []  # kept open while their servers serve


def serve(app: ASGIApp) -> int:
    """Serve ``app`` with $server on a free loopback port, in a daemon thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    LISTENING.append(sock)
    config = uvicorn.Config(  #?uvicorn
        watched(app), lifespan="off", ws="wsproto", log_level="critical"  #?uvicorn
    )  #?uvicorn
    server = uvicorn.Server(config)  #?uvicorn
    run = partial(server.run, sockets=[sock])  #?uvicorn
    config = Config()  #?hypercorn
    config.bind = [f"fd://{sock.fileno()}"]  #?hypercorn
    config.loglevel = "CRITICAL"  #?hypercorn
    stop = asyncio.Event()  # never set: the daemon thread ends with the script  #?hypercorn
    main = serve_hypercorn(watched(app), config, shutdown_trigger=stop.wait)  #?hypercorn
    run = partial(asyncio.run, main)  #?hypercorn
    threading.Thread(target=run, daemon=True).start()
    port = sock.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /.ready HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n")
        if not conn.recv(64).startswith(b"HTTP/1.1 204"):
            raise SystemExit("$server did not start")
    return port


class Client:
    """A real WebSocket client (wsproto over a socket), and what it saw."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.status: int | None = None  # 101 once accepted
        self.received: list[Any] = []  # the endpoint's frames it got
        self.partial: Any = None  # a frame still arriving
        self.server_close: tuple[int, str] | None = None
        self.left: tuple[int, str] | None = None  # its own close (1006: a drop)
        self.open = self.done = False

    def send(self, event: Any) -> None:
        try:
            self.sock.sendall(self.ws.send(event))
        except OSError:  # reset by the server
            self.open, self.done = False, True

    def pump(self, patience: float) -> bool:
        """Read and handle what arrives within ``patience`` seconds; False at
        EOF or once the time is up."""
        self.sock.settimeout(patience)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            data = b""  # reset by the server: the same as a close here
        try:
            self.ws.receive_data(data or None)
        except RemoteProtocolError:  # closed mid-handshake: no (more) answer
            self.done = True
            return False
        for event in self.ws.events():
            if isinstance(event, events.AcceptConnection):
                self.open, self.status = True, 101
            elif isinstance(event, events.RejectConnection):
                self.status, self.done = event.status_code, not event.has_body
            elif isinstance(event, events.RejectData):
                self.done = event.body_finished
            elif isinstance(event, events.Message):
                empty = b"" if isinstance(event.data, bytes) else ""
                self.partial = (self.partial or empty) + event.data
                if event.message_finished:
                    self.received.append(self.partial)
                    self.partial = None
            elif isinstance(event, events.CloseConnection):
                frame = self.ws.state is ConnectionState.REMOTE_CLOSING
                if frame or self.open:  # a close frame, or the end of an open one
                    self.server_close = (event.code, event.reason or "")
                if frame:
                    self.send(event.response())
                self.open, self.done = False, True
        return bool(data) and not self.done

    def leave(self, what: str, code: int, reason: str) -> None:
        if what == "drop" or not self.open:
            self.left = (1006, "")
            self.sock.shutdown(socket.SHUT_RDWR)  # gone, without a close frame
            self.done = True
            return
        self.left = (code, reason)
        self.send(events.CloseConnection(code, reason))
        self.open = False

    def report(self) -> str:
        return (
            f"status={self.status} frames={self.received!r} "
            f"server close={self.server_close} client left={self.left}"
        )


def play(port: int) -> Client:
    """Open the WebSocket and play the client's steps."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = Client(sock)
    handshake = {"subprotocols": SUBPROTOCOLS, "extra_headers": HEADERS}
    client.send(events.Request(host="testserver", target=PATH, **handshake))
    if STEPS and STEPS[0][2] < 0:
        client.leave("drop", 1006, "")  # right after its handshake request
        return client
    while not (client.open or client.done) and client.pump(TIMEOUT):
        pass
    for what, payload, after, code, reason in STEPS:
        while client.open and len(client.received) < after and client.pump(TIMEOUT):
            pass
        if not client.open:
            break
        if what in ("close", "drop"):
            client.leave(what, code, reason)
            break
        message = events.TextMessage if what == "text" else events.BytesMessage
        client.send(message(payload))
    while client.open and client.pump(TIMEOUT):
        pass  # the server may close
    if client.open:
        client.leave("close", $idle)
    while not client.done and client.pump(TIMEOUT):
        pass
    sock.close()
    return client


class Observed:
    """What the client saw, and what the app did, for the checks."""

    def __init__(self, client: Client, hung: bool) -> None:
        self.client = client
        self.hung = hung  # the app had not returned TIMEOUT after the client was done
        self.escaped = ESCAPED[0] if ESCAPED else None
        self.gone = client.left is not None  # the client left (closed or dropped)

    def report(self) -> str:
        return f"{self.client.report()} escaped={self.escaped!r} app hung={self.hung}"


def run(make_app: Callable[[], ASGIApp], backend: str) -> Observed:
    """Serve the app with the real $server (its own event loop: ``backend`` is
    the scripted reproducer's choice, unused here) and play the client."""
    client = play(serve(make_app()))
    return Observed(client, hung=not ENDED.wait(TIMEOUT))


def bug_shows(backend: str) -> bool:
    """Run the case on the real $server; whether the bug shows."""
$check


def main() -> int:
    print(f"Starlette {version('starlette')}, $server {version('$server')}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
$upstream    shows = bug_shows("asyncio")
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())'''

#: What the client imports from wsproto.
_WSPROTO = (
    "from wsproto import ConnectionType, WSConnection, events\n"
    "from wsproto.connection import ConnectionState\n"
    "from wsproto.utilities import RemoteProtocolError"
)


def render_ws_live(
    case: Case,
    key: str,
    server: str,
    *,
    title: str = "",
    upstream: str = "",
    specs: Mapping[str, str] | None = None,
    app_spec: str = "",
) -> str:
    """The source of a script that shows websocket ``key`` on the real ``server``.

    Raises:
        ValueError: the key has no check a real server's run can make (the
            message lists those that do), or the case runs code a script cannot
            hold (the message names the field and why).
    """
    inv = key.partition(":")[0]
    if inv not in ("W1", "W2", "W3", "W4"):
        raise ValueError(
            f"no real-server check for websocket key {key!r}; supported keys: "
            f"{WS_LIVE_KEYS} (drop --server for a scripted one)"
        )
    user = user_imports(case, specs or {}, app_spec)
    obs, expected, source = websocket_check(key, case)
    obs |= {"taps"}  # the taps' records are what the script prints, and reads
    hs = case.websocket.handshake
    steps = [
        (s.kind, s.payload, s.after, s.code, s.reason) for s in case.websocket.steps
    ]
    upstream_line = f'    print("upstream: {upstream}")\n' if upstream else ""
    live = render(
        WS_SERVE,
        {server},
        path=lit(hs.path),
        subprotocols=lit(list(hs.subprotocols)),
        headers=lit(
            [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hs.headers]
        ),
        steps="[\n" + "".join(f"    {step_literal(s)},\n" for s in steps) + "]"
        if steps
        else "[]",
        idle=f"{IDLE_CLOSE[0]}, {lit(IDLE_CLOSE[1])}",
        inner=lit("into the app" if case.app else "into the endpoint"),
        server=server,
        check=textwrap.indent(source, "    "),
        upstream=upstream_line,
    )
    code = "\n\n\n".join([app_source(case, obs, False), live])
    helpers = [
        render(h, {f"see_{o}" for o in obs})
        for name, h in WS_HELPERS.items()
        if f"{name}(" in code or f"{name}," in code
    ]
    seen = "# What the app did, for the check at the end.\nSEEN: dict[str, Any] = {}"
    code = "\n\n\n".join([*helpers, seen, code])
    more = "\n".join([_WSPROTO, *user])  # the user's layers, imported by their specs
    return live_script(code, key, server, expected, title, more)
