"""Standalone reproducers on a real server: ``asgifuzz repro ENTRY --server uvicorn``.

`render_live` writes a script that needs only Starlette, the server and the
standard library: the case's app (as `app_source` writes it), served by the
real server in a thread on a free loopback port, and a raw socket client that
sends the case's request (one write per body chunk) and reads the response
with a wall-clock bound. ``python repro.py`` prints what the client saw and
exits 1 while the bug shows, 0 once it does not: "run this, watch it hang".
The checks are those of ``asgifuzz confirm`` a client can make on its own.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from asgifuzz._repro.app import app_source
from asgifuzz._repro.checks import HELPERS
from asgifuzz._repro.live_head import live_script
from asgifuzz._repro.render import lit, render
from asgifuzz._repro.ws_live import render_ws_live
from asgifuzz.models import Case

#: The real servers a script can use.
LIVE_SERVERS = ("uvicorn", "hypercorn")
#: Per key: what is expected, and the body of ``bug_shows(seen, plain)``.
LIVE_CHECKS = {
    "I4:response": (
        "the client gets its complete response",
        'return seen["hung"]',
    ),
    "I8:complete+": (
        "pass-through middleware does not make a cut response look complete",
        'return seen["complete"] and not plain["complete"]',
    ),
    "I8:complete-": (
        "pass-through middleware does not cut a complete response",
        'return plain["complete"] and not seen["complete"]',
    ),
    "I8:status": (
        "pass-through middleware does not change the status",
        'return seen["status"] != plain["status"]',
    ),
    "I3": (
        "the endpoint reads exactly the bytes the client sent (it answers their SHA-256)",
        'digest = hashlib.sha256(b"".join(BODY)).hexdigest().encode()\n'
        'return seen["complete"] and seen["body"] != digest',
    ),
    "I1:500": ("no 500 response", 'return seen["status"] == 500'),
    "I11:no-body": (
        "a 204 or 304 response declares no content",
        'length = seen["headers"].get("content-length", "0")\n'
        'return seen["status"] in (204, 304) and length.strip() != "0"',
    ),
}

SERVE = '''\
# --- A real server and a real client -------------------------------------------

TIMEOUT = 2.0  # wall-clock seconds without more of the response: a hang
REQUEST = $request
BODY: list[bytes] = $body  # the request body, one write per chunk
AT = $at  # the client hangs up after body chunk #AT was sent  #?leave_sent
AT = $at  # the client hangs up after body chunk #AT was read  #?leave_body
TYPE = $type  # the exception the server logs while the bug shows  #?log
LOG: list[str] = []  # what the server logged, tracebacks included  #?log
#?log
#?log
class Keep(logging.Handler):  #?log
    """Keeps what the server logs, for the check at the end."""  #?log
    #?log
    def emit(self, record: logging.LogRecord) -> None:  #?log
        LOG.append(self.format(record))  #?log
#?log
#?log
def escaped() -> str:  #?log
    """The line of the server's log where a TYPE ended a traceback ("": none)."""  #?log
    pattern = rf"^(?:[ |+]*\\| )?((?:\\w+\\.)*{re.escape(TYPE)}(?::.*)?)$$"  #?log
    found = re.search(pattern, "\\n".join(LOG), re.MULTILINE)  #?log
    return found.group(1).strip() if found else ""  #?log


def ready(app: ASGIApp) -> ASGIApp:
    """``app``, with GET /.ready answered here: the client waits for it."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/.ready":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return wrapped


LISTENING: list[socket.socket] = []  # kept open while their servers serve


def serve(app: ASGIApp) -> int:
    """Serve ``app`` with $server on a free loopback port, in a daemon thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    LISTENING.append(sock)
    config = uvicorn.Config(ready(app), lifespan="off", log_level="critical")  #?uvicorn&!log
    config = uvicorn.Config(ready(app), lifespan="off", log_config=None)  #?uvicorn&log
    logging.getLogger("uvicorn.error").addHandler(Keep())  #?uvicorn&log
    server = uvicorn.Server(config)  #?uvicorn
    run = partial(server.run, sockets=[sock])  #?uvicorn
    config = Config()  #?hypercorn
    config.bind = [f"fd://{sock.fileno()}"]  #?hypercorn
    config.loglevel = "CRITICAL"  #?hypercorn
    config.errorlog = logging.getLogger("hypercorn.error")  #?hypercorn&log
    config.errorlog.addHandler(Keep())  #?hypercorn&log
    stop = asyncio.Event()  # never set: the daemon thread ends with the script  #?hypercorn
    main = serve_hypercorn(ready(app), config, shutdown_trigger=stop.wait)  #?hypercorn
    run = partial(asyncio.run, main)  #?hypercorn
    threading.Thread(target=run, daemon=True).start()
    port = sock.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /.ready HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n")
        if not conn.recv(64).startswith(b"HTTP/1.1 204"):
            raise SystemExit("$server did not start")
    return port


def play(port: int) -> dict[str, Any]:
    """Send the request; what the client saw (``hung``: no more data in TIMEOUT)."""
    seen: dict[str, Any] = {"status": None, "headers": {}, "body": b"", "reads": 0}
    seen.update(complete=False, hung=False)
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(REQUEST)
        for chunk in BODY:  #?!leave_sent
        for chunk in BODY[:AT]:  #?leave_sent
            conn.sendall(chunk)
        seen["left"] = f"after body chunk #{AT} was sent"  #?leave_sent
        return seen  # the client hangs up: the socket closes  #?leave_sent
        conn.settimeout(TIMEOUT)  #?!leave_sent
        data = b""  #?!leave_sent
        try:  #?!leave_sent
            while True:  #?!leave_sent
                more = conn.recv(65536)  #?!leave_sent
                data += more  #?!leave_sent
                if done(data, seen) or not more:  #?!leave_sent&!leave_start&!leave_body
                # The client hangs up as soon as it has read that far.  #?leave_start|leave_body
                if leaves(seen, done(data, seen)) or not more:  #?leave_start|leave_body
                    break  #?!leave_sent
        except TimeoutError:  #?!leave_sent
            seen["hung"] = True  #?!leave_sent
    return seen  #?!leave_sent
#?leave_start|leave_body
#?leave_start|leave_body
def leaves(seen: dict[str, Any], complete: bool) -> bool:  #?leave_start|leave_body
    """Whether the client stops: at the case's point, or the response is complete."""  #?leave_start|leave_body
    if seen["status"] is not None:  #?leave_start
        seen["left"] = "after the status line arrived"  #?leave_start
    if seen["reads"] > AT:  #?leave_body
        seen["left"] = f"after body chunk #{AT} was read"  #?leave_body
    return "left" in seen or complete  #?leave_start|leave_body


def done(data: bytes, seen: dict[str, Any]) -> bool:
    """Parse what arrived so far; whether the response is complete."""
    head, found, rest = data.partition(b"\\r\\n\\r\\n")
    if not found:
        return False
    status, *lines = head.decode("latin-1").split("\\r\\n")
    seen["status"] = int(status.split()[1])
    pairs = (line.partition(":") for line in lines)
    headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
    seen["headers"] = headers
    if seen["status"] in (204, 304):
        seen["complete"] = True
    elif headers.get("transfer-encoding") == "chunked":
        body, seen["reads"] = b"", 0
        while b"\\r\\n" in rest:
            size, _, after = rest.partition(b"\\r\\n")
            n = int(size.split(b";")[0], 16)
            if len(after) < n + 2:
                break
            if n == 0:
                seen["complete"] = True
                break
            body, rest = body + after[:n], after[n + 2 :]
            seen["reads"] += 1  # one more chunk read
        seen["body"] = body
    else:
        seen["reads"] += len(rest) > len(seen["body"])
        seen["body"] = rest
        length = headers.get("content-length")
        seen["complete"] = length is not None and len(rest) >= int(length)
    return bool(seen["complete"])


def bug_shows() -> bool:
    """Serve the app (and, for a pass-through check, the app without those layers)."""
    seen = play(serve(make_app()))
    print(f"the client saw: {seen}")
    deadline = time.monotonic() + TIMEOUT  # the app may log after the client left  #?log
    while not escaped() and time.monotonic() < deadline:  #?log
        time.sleep(0.05)  #?log
    print(f"the server logged: {escaped() or 'no ' + TYPE}")  #?log
    plain = play(serve(make_app_without_passthrough()))  #?plain
    print(f"without the pass-through layers: {plain}")  #?plain
$check


def main() -> int:
    print(f"Starlette {version('starlette')}, $server {version('$server')}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
$upstream    shows = bug_shows()
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())'''

#: The template's flag for each point where the client hangs up.
_LEAVE_FLAGS = {
    "receive": "leave_sent",
    "response_start": "leave_start",
    "body_message": "leave_body",
}


def request_head(case: Case) -> bytes:
    """The request line and headers, as the driver's scope has them (what a
    live reproducer and `asgifuzz confirm` both send)."""
    req = case.request
    target = req.path + (f"?{req.query}" if req.query else "")
    lines = [f"{req.method} {target} HTTP/1.1", "host: testserver"]
    lines += [f"{k}: {v}" for k, v in req.headers]
    if req.body:
        lines.append(f"content-length: {len(req.body_bytes)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def render_live(
    case: Case,
    key: str,
    server: str,
    *,
    title: str = "",
    upstream: str = "",
    specs: Mapping[str, str] | None = None,
    app_spec: str = "",
) -> str:
    """The source of a script that shows ``key`` on the real ``server``.

    The client hangs up where the case's does (after the k-th body chunk was
    sent, after the status line arrived, after the m-th body chunk was read),
    as ``asgifuzz confirm`` does; after that only the server's log can show the
    bug, so such a script checks an ``I1:<type>`` key (the traceback the server
    logs, kept by a logging handler).

    Raises:
        ValueError: the key has no check a client can make on its own (or none
            once its client left), the client leaves after a count of
            checkpoints, or the case runs the user's own code; the message
            says what is supported.
    """
    if case.scope == "websocket" and case.lifespan is None:
        # A real WebSocket client (`render_ws_live`); it may import your code.
        return render_ws_live(
            case, key, server, title=title, upstream=upstream, specs=specs,
            app_spec=app_spec,
        )  # fmt: skip
    if case.app or any(la.family == "user" for la in case.stack.layers):
        raise ValueError("the case runs your own code, which a script cannot hold")
    if case.scope != "http" or case.lifespan is not None:
        field = "scope" if case.scope != "http" else "lifespan"
        raise ValueError(
            f"field {field!r}: a real-server script plays one HTTP request; "
            "drop --server for a scripted one"
        )
    family, _, sub = key.partition(":")
    logged = family == "I1" and bool(sub) and sub not in ("500", "incomplete")
    if key not in LIVE_CHECKS and not logged:
        raise ValueError(
            f"no real-server check for key {key!r}; supported keys: "
            f"{', '.join(LIVE_CHECKS)}, I1:<exception type> (asgifuzz confirm "
            "judges more)"
        )
    leave = case.client.disconnect
    if leave == "checkpoints":
        raise ValueError(
            "the client of this case hangs up after a count of scheduler "
            "checkpoints, which is no point on the wire"
        )
    if leave != "never" and not logged:
        raise ValueError(
            f"the client of this case hangs up mid-way, after which it sees no "
            f"evidence of {key} (asgifuzz confirm: not confirmable)"
        )
    expected, check = (
        (f"no {sub} escapes the app (the server logs none)", "return bool(escaped())")
        if logged
        else LIVE_CHECKS[key]
    )
    plain = key.startswith("I8")
    flags = {server, *(["plain"] if plain else []), *(["log"] if logged else [])}
    flags |= {_LEAVE_FLAGS[leave]} if leave != "never" else set()
    upstream_line = f'    print("upstream: {upstream}")\n' if upstream else ""
    live = render(
        SERVE,
        flags,
        request=lit(request_head(case)),
        body=lit(list(case.request.body)),
        at=case.client.at,
        type=lit(sub),
        server=server,
        check=textwrap.indent(check, "    "),
        upstream=upstream_line,
    )
    code = "\n\n\n".join([app_source(case, set(), plain), live])
    helpers = [
        render(h, set())
        for name, h in HELPERS.items()
        if re.search(rf"\b{name}[(,]", code)
    ]
    code = "\n\n\n".join([*helpers, code])
    return live_script(code, key, server, expected, title)
