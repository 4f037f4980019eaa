"""The real client of ``asgifuzz confirm``: a raw HTTP/1.1 socket client.

`play` sends a case's request the way the driver's client does (the head, then
each body chunk in its own write, with Nagle off so that each leaves at once),
hangs up at the case's protocol point, and returns what it `Seen`: the status,
headers and body, whether the response's framing was complete, and whether the
server hung past the wall-clock bound. A confirmation is not on the fuzz path:
here the clock is real, and a hang costs its bound.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from asgifuzz._repro.live import request_head
from asgifuzz.models import Case


@dataclass
class Seen:
    """What the real client saw of one request.

    ``complete``: the response ended as its framing says (content-length bytes,
    the chunked terminator, or a response without content). ``closed``: the
    server closed the connection before that. ``hung``: neither happened within
    the bound. ``left`` says where the client hung up itself ("": it did not).
    """

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    closed: bool = False
    hung: bool = False
    body_reads: int = 0
    left: str = ""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (None: absent)."""
        return next((v for k, v in self.headers if k.lower() == name), None)

    def describe(self) -> str:
        """One line for people: what the client saw."""
        if self.status is None:
            what = "no response"
        else:
            what = (
                f"status {self.status}, {len(self.body)} body bytes {self.body[:40]!r}"
            )
            what += ", framing complete" if self.complete else ", framing incomplete"
        if self.hung:
            what += ", hung (no more data within the bound)"
        elif self.closed:
            what += ", the server closed the connection"
        return what + (f"; the client hung up {self.left}" if self.left else "")


class _Reader:
    """Reads a response from the socket until a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.eof = self.timed_out = False

    def more(self) -> bool:
        """Read once more; False at EOF or the deadline."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            self.timed_out = True
            return False
        except OSError:
            data = b""  # reset by the server: the same as a close here
        self.eof = not data
        self.buffer += data
        return bool(data)

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self.more():
                return None
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not self.more():
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def _read_head(reader: _Reader, seen: Seen) -> bool:
    while True:
        head = reader.until(b"\r\n\r\n")
        if head is None:
            return False
        status_line, *lines = head.decode("latin-1").split("\r\n")
        seen.status = int(status_line.split()[1])
        seen.headers = [
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in lines)
        ]
        if not 100 <= seen.status < 200:  # an interim response: the real one follows
            return True


def _read_body(reader: _Reader, seen: Seen, case: Case) -> None:
    def enough() -> bool:
        client = case.client
        if client.disconnect == "body_message" and seen.body_reads > client.at:
            seen.left = f"after body chunk #{client.at} was read"
            return True
        return False

    status = seen.status or 0
    if case.request.method == "HEAD" or status in (204, 304):
        seen.complete = True
        return
    if (seen.header("transfer-encoding") or "").lower() == "chunked":
        while (size_line := reader.until(b"\r\n")) is not None:
            size = int(size_line.split(b";")[0], 16)
            data = reader.exactly(size + 2)
            if data is None:
                return
            if size == 0:
                seen.complete = True
                return
            seen.body += data[:-2]
            seen.body_reads += 1
            if enough():
                return
        return
    length = seen.header("content-length")
    want = int(length) if length is not None and length.isdigit() else None
    seen.body, reader.buffer = reader.buffer, b""
    seen.body_reads += bool(seen.body)
    while want is None or len(seen.body) < want:
        if enough() or not reader.more():
            break
        seen.body += reader.buffer
        reader.buffer = b""
        seen.body_reads += 1
    seen.complete = want is not None and len(seen.body) >= want


def play(case: Case, port: int, bound: float) -> Seen:
    """Play the case's client against the server on ``port``; see `Seen`."""
    seen = Seen()
    chunks, client = case.request.body, case.client
    upto = min(client.at, len(chunks)) if client.disconnect == "receive" else None
    with socket.create_connection(("127.0.0.1", port), timeout=bound) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request_head(case))
        for chunk in chunks[:upto]:
            if chunk:
                sock.sendall(chunk)
        if upto is not None:
            seen.left = f"after body chunk #{upto} was sent"
            return seen
        reader = _Reader(sock, time.monotonic() + bound)
        if _read_head(reader, seen):
            if client.disconnect == "response_start":
                seen.left = "after the status line arrived"
                return seen
            _read_body(reader, seen, case)
        if not (seen.complete or seen.left):
            seen.hung, seen.closed = reader.timed_out, reader.eof
    return seen
