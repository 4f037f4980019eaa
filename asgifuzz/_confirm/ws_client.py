"""The real WebSocket client of the conformance probe: wsproto over a socket.

`play_ws` opens a WebSocket to the server's ``path`` the way the driver's
client does (`asgifuzz._driver.ws_server.FakeWsServer.client`): it plays the
path's steps (`ws_probe.WS_PATHS`: a frame, a close with a code once it has
received ``after`` frames, or a drop of the TCP connection without a close
frame), then waits for the server to close; a client still open after
`IDLE_WAIT` seconds closes with 1000 ``"done"``. It returns what it saw, keyed
as the driver's `ClientView`: ``status`` (101 once accepted; None: no answer),
``subprotocol``, ``body`` (a denial response's), ``received`` and
``server_close``. wsproto is a dependency of hypercorn (the servers extra).
Not on the fuzz path: the clock here is real, and every wait is bounded.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from asgifuzz._confirm.ws_probe import OFFERED, WS_PATHS, Record

#: Seconds the client waits for the server, once its script is done, to close.
IDLE_WAIT = 2.0


class _Session:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        # wsproto comes with hypercorn (the servers extra), as the servers do.
        from wsproto import ConnectionType, WSConnection

        self.sock, self.deadline = sock, deadline
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.seen: Record = {
            "status": None,
            "subprotocol": None,
            "body": "",
            "received": [],
            "server_close": None,
        }
        self.open = self.done = False

    def send(self, event: Any) -> None:
        try:
            self.sock.sendall(self.ws.send(event))
        except OSError:  # reset by the server (daphne, answering its close)
            self.open, self.done = False, True

    def pump(self, until: float) -> bool:
        """Read and handle one batch of events; False at EOF or ``until``."""
        left = min(until, self.deadline) - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            data = b""  # reset by the server: the same as a close here
        # wsproto comes with hypercorn (the servers extra), as the servers do.
        from wsproto.utilities import RemoteProtocolError

        try:
            self.ws.receive_data(data or None)
        except RemoteProtocolError:  # closed mid-handshake: no (more) answer
            self.done = True
            return False
        self._handle()
        return bool(data) and not self.done

    def _handle(self) -> None:
        # wsproto comes with hypercorn (the servers extra), as the servers do.
        from wsproto import events
        from wsproto.connection import ConnectionState

        for event in self.ws.events():
            if isinstance(event, events.AcceptConnection):
                self.open = True
                self.seen["status"], self.seen["subprotocol"] = 101, event.subprotocol
            elif isinstance(event, events.RejectConnection):
                self.seen["status"] = event.status_code
                self.done = not event.has_body
            elif isinstance(event, events.RejectData):
                self.seen["body"] += bytes(event.data).decode("latin-1")
                self.done = event.body_finished
            elif isinstance(event, events.Message):
                self.seen["received"].append(event.data)
            elif isinstance(event, events.CloseConnection):
                frame = self.ws.state is ConnectionState.REMOTE_CLOSING
                if frame or self.open:  # a close frame, or the end of an open one
                    self.seen["server_close"] = [event.code, event.reason or ""]
                if frame:
                    self.send(event.response())
                self.open, self.done = False, True


def play_ws(path: str, port: int, bound: float) -> Record:
    """Play ``path``'s steps against the server on ``port``; see the module."""
    # wsproto comes with hypercorn (the servers extra), as the servers do.
    from wsproto import events

    deadline = time.monotonic() + bound
    with socket.create_connection(("127.0.0.1", port), timeout=bound) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = _Session(sock, deadline)
        request = events.Request(
            host="127.0.0.1", target=path, subprotocols=list(OFFERED.get(path, ()))
        )
        session.send(request)
        while not (session.open or session.done) and session.pump(deadline):
            pass
        for step in WS_PATHS[path]:
            while (
                session.open
                and len(session.seen["received"]) < step.after
                and session.pump(deadline)
            ):
                pass
            if not session.open:
                break
            if step.kind == "drop":
                sock.shutdown(socket.SHUT_RDWR)  # gone, without a close frame
                return session.seen
            if step.kind == "close":
                session.send(events.CloseConnection(step.code, step.reason))
                session.open = False
                break
            session.send(events.TextMessage(str(step.payload)))
        idle = time.monotonic() + IDLE_WAIT
        while session.open and session.pump(idle):
            pass
        if session.open:
            session.send(events.CloseConnection(1000, "done"))
        while not session.done and session.pump(deadline):
            pass
    return session.seen
