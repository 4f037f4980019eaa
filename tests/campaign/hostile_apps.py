"""Apps that attack the process running them, for the tests of the supervisor.

Each one answers like a well-behaved app and turns hostile on a request with a
query string, so the fuzzer still has to find a case that triggers it. Run them with
``asgifuzz fuzz --app hostile_apps:busy`` (this directory on ``sys.path``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any


async def _answer(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _hostile(scope: Any) -> bool:
    return scope["type"] == "http" and bool(scope["query_string"])


def loop_forever() -> None:
    n = 0
    while True:  # the looping line
        n += 1


async def busy(scope: Any, receive: Any, send: Any) -> None:
    if _hostile(scope):
        loop_forever()
    await _answer(send)


async def sleepy(scope: Any, receive: Any, send: Any) -> None:
    if _hostile(scope):
        time.sleep(3600)  # noqa: ASYNC251 (the point)
    await _answer(send)


async def event_wait(scope: Any, receive: Any, send: Any) -> None:
    if _hostile(scope):
        threading.Event().wait()
    await _answer(send)


async def socket_read(scope: Any, receive: Any, send: Any) -> None:
    if _hostile(scope):
        a, b = socket.socketpair()
        try:
            a.recv(1)  # nobody ever writes
        finally:
            a.close()
            b.close()
    await _answer(send)


def _sync_sleep() -> None:
    time.sleep(3600)


async def thread_sleep(scope: Any, receive: Any, send: Any) -> None:
    """Blocks a worker thread (as a stuck sync endpoint does), not the loop."""
    if _hostile(scope):
        import anyio.to_thread

        await anyio.to_thread.run_sync(_sync_sleep)
    await _answer(send)


#: What `allocate` keeps (a leak: nothing is ever freed).
HOARD: list[bytes] = []


async def allocate(scope: Any, receive: Any, send: Any) -> None:
    if _hostile(scope):
        while True:
            HOARD.append(bytearray(64 * 1024 * 1024))  # type: ignore[arg-type]
    await _answer(send)


async def _body(receive: Any) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def exit_now(scope: Any, receive: Any, send: Any) -> None:
    """Exits the process on a request with a query string and a body (so a
    case that shows it has parts the shrinking of a crash can drop)."""
    if _hostile(scope) and await _body(receive):
        os._exit(3)
    await _answer(send)


async def segfault(scope: Any, receive: Any, send: Any) -> None:
    """Segfaults, on a request with a query string and a body."""
    if _hostile(scope) and await _body(receive):
        import ctypes

        ctypes.string_at(0)
    await _answer(send)


async def fine(scope: Any, receive: Any, send: Any) -> None:
    """Never hostile: for the throughput and signal tests."""
    if scope["type"] == "http":
        await _answer(send)
