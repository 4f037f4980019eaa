"""The server process of ``asgifuzz confirm``: one real server serving one app.

``python -m asgifuzz._confirm.serve SERVER (--case FILE | --probe FILE)`` binds a
loopback socket on a free port, prints ``ready PORT SERVER VERSION STARLETTE_VERSION`` on standard
output, and serves until SIGTERM: a case's app (built afresh for each request,
so that the tries of one confirmation share nothing), or the conformance probe
(which writes what it saw of each request to FILE, one JSON line per request).
``GET /.asgifuzz/ready`` is answered by the process itself, not by the app: the
parent polls it to know that the server accepts requests. uvicorn and hypercorn
serve the bound socket itself; daphne (Twisted's endpoint strings) and granian
(its embedded server, the same Rust core as its CLI's workers) bind their own,
so the port is closed and handed over to them.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from asgifuzz._confirm.probe import ProbeApp
from asgifuzz._types import ASGIApp, Receive, Scope, Send
from asgifuzz.models import Case, build
from asgifuzz.models._record import Recorder

#: The path the parent polls until the server answers.
READY_PATH = "/.asgifuzz/ready"
#: The servers ``asgifuzz confirm`` can start, by their distribution name.
SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")
#: Seconds a server waits for unfinished requests when it is told to stop.
GRACE = 1.0


def missing(server: str) -> str:
    """Why ``server`` cannot be served with this Python ("": it is installed)."""
    try:
        version(server)
    except PackageNotFoundError:
        return f"{server} is not installed (pip install 'asgifuzz[servers]')"
    return ""


class CaseApp:
    """The case's app, built afresh for every request; lifespan answered here."""

    def __init__(self, make: ASGIApp | None, case: Case | None = None) -> None:
        self.make = make
        self.case = case

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rpartition(".")[2]  # startup or shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] == "http" and scope["path"] == READY_PATH:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ready"})
            return
        if self.make is not None:
            await self.make(scope, receive, send)
            return
        assert self.case is not None  # one of the two is given (main)
        await build(self.case, Recorder())(scope, receive, send)


def _serve_uvicorn(app: ASGIApp, sock: socket.socket) -> None:
    import uvicorn  # an optional extra: only the server process needs it

    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(GRACE),
    )
    uvicorn.Server(config).run(sockets=[sock])


def _serve_hypercorn(app: ASGIApp, sock: socket.socket) -> None:
    # An optional extra: only the server process needs it.
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.graceful_timeout = GRACE
    config.loglevel = "WARNING"
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]  # hypercorn's own types


def _serve_daphne(app: ASGIApp, sock: socket.socket) -> None:
    # An optional extra: only the server process needs it. daphne.server
    # installs Twisted's asyncio reactor, so it is imported before the rest.
    import logging

    from daphne.server import Server

    logging.basicConfig(level=logging.WARNING)  # its tracebacks, on stderr
    # daphne binds its own socket (from an endpoint string): the port is handed
    # over, free again.
    address, port = sock.getsockname()
    sock.close()
    endpoint = f"tcp:port={port}:interface={address}"
    Server(app, endpoints=[endpoint], verbosity=0).run()


def _serve_granian(app: ASGIApp, sock: socket.socket) -> None:
    # An optional extra: only the server process needs it.
    import signal

    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    # granian binds its own socket: the port is handed over, free again.
    address, port = sock.getsockname()
    sock.close()
    # Its log on standard error (it writes to standard output by default).
    console = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    server = Server(
        app,
        address,
        port,
        interface=Interfaces.ASGINL,
        log_level=LogLevels.warning,
        log_dictconfig={"handlers": {"console": console, "access": console}},
    )

    async def serve() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.stop)
        await server.serve()

    asyncio.run(serve())


#: How each server serves an app on a bound socket.
_SERVE = {
    "uvicorn": _serve_uvicorn,
    "hypercorn": _serve_hypercorn,
    "daphne": _serve_daphne,
    "granian": _serve_granian,
}


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m asgifuzz._confirm.serve")
    parser.add_argument("server", choices=SERVERS)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--case", type=Path, help="a bare case (JSON)")
    what.add_argument("--probe", type=Path, help="where the probe writes what it saw")
    args = parser.parse_args(argv)
    if args.case is not None:
        app = CaseApp(
            None, Case.from_json(args.case.read_text(), source=str(args.case))
        )
    else:
        app = CaseApp(ProbeApp(args.probe))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    framework = version("starlette")
    sys.stdout.write(f"ready {port} {args.server} {version(args.server)} {framework}\n")
    sys.stdout.flush()
    _SERVE[args.server](app, sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
