"""The conformance probe: a tiny ASGI app that records what a server does.

The same `ProbeApp` runs on a real server (``serve.py --probe``) and on the
driver's `FakeServer` with a profile (`conformance.profile_record`), so that the
profile's claims and the server's behaviour are measured the same way. Each
request's path picks what is probed; the record (plain JSON data) holds:

- ``asgi``, ``extensions``: the scope's ``asgi`` dict and extension names
  (None: the key is absent);
- ``messages``: the body as ``http.request`` messages, ``[len(body), more_body]``;
- ``/after-body``: what ``receive()`` does once the body is complete and the
  response is not sent (``before_response``), and twice after it is complete
  (``after_response``);
- ``/disconnect``: after the client hung up (it closes once it read the first
  body chunk), what two ``receive()`` calls return (``after_disconnect``) and what
  ``send()`` of one more body chunk does (``send_after_disconnect``);
- ``/unread``: the client sends its body and hangs up before the app reads it;
  the app waits `UNREAD_WAIT` seconds, then records the type of the message
  ``receive()`` gives (``unread``: is the body delivered before the disconnect?);
- ``/after-complete``: what ``send()`` of one more body chunk does right after
  the final one, the client still connected (``send_after_complete``);
- ``/large``: a body of `LARGE` bytes in one write (``messages``: how the server
  slices it).

A websocket scope goes to `asgifuzz._confirm.ws_probe.WsProbeApp`, with the same sink.

A call that does not return within `WAIT` seconds is recorded as ``"blocks"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from asgifuzz._confirm.ws_probe import WsProbeApp
from asgifuzz._types import Receive, Scope, Send

#: Seconds after which a ``receive()`` that has not returned counts as blocking.
WAIT = 0.3
#: Seconds the probe waits for the client's disconnect (it comes at once).
DISCONNECT_WAIT = 5.0
#: Seconds the ``/unread`` probe waits for the server to see the client go.
UNREAD_WAIT = 0.5
#: The size of the ``/large`` probe's body.
LARGE = 20000
#: The paths the probe answers, one per behaviour probed.
PATHS = ("/body", "/after-body", "/disconnect", "/unread", "/after-complete", "/large")

Record = dict[str, Any]


async def _receive_within(receive: Receive, seconds: float) -> str:
    """The type of the message ``receive()`` returns, or ``"blocks"``."""
    with anyio.move_on_after(seconds):
        return str((await receive()).get("type"))
    return "blocks"


async def _read_body(receive: Receive, record: Record) -> None:
    messages = record["messages"] = []
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            messages.append([message.get("type"), False])
            return
        messages.append([len(message.get("body", b"")), bool(message.get("more_body"))])
        if not message.get("more_body"):
            return


async def _send_one_more(send: Send) -> str:
    """What one more body chunk's ``send()`` does (the client gone, or the
    response complete)."""
    try:
        await send({"type": "http.response.body", "body": b"y", "more_body": True})
    except Exception as exc:
        return f"raises {type(exc).__name__}"
    return "returns"


class ProbeApp:
    """Records what the server does, by the request's path (see the module).

    ``sink`` receives each request's record: a JSON line appended to a file
    (given a path), or a callable.
    """

    def __init__(self, sink: Path | Callable[[Record], None]) -> None:
        self.sink = sink

    def _keep(self, record: Record) -> None:
        if callable(self.sink):
            self.sink(record)
            return
        with self.sink.open("a") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WsProbeApp(self._keep)(scope, receive, send)
            return
        extensions = scope.get("extensions")
        record: Record = {
            "path": scope["path"],
            "asgi": dict(scope.get("asgi", {})),
            "extensions": None if extensions is None else sorted(extensions),
        }
        if scope["path"] == "/unread":
            await anyio.sleep(UNREAD_WAIT)
            record["unread"] = str((await receive()).get("type"))
            self._keep(record)  # no response: the client is gone
            return
        await _read_body(receive, record)
        if scope["path"] == "/after-body":
            record["before_response"] = await _receive_within(receive, WAIT)
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)
        if scope["path"] == "/disconnect":
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            first = await _receive_within(receive, DISCONNECT_WAIT)
            second = await _receive_within(receive, WAIT)
            record["after_disconnect"] = [first, second]
            record["send_after_disconnect"] = await _send_one_more(send)
        else:
            await send({"type": "http.response.body", "body": b"probed"})
        if scope["path"] == "/after-complete":
            record["send_after_complete"] = await _send_one_more(send)
        if scope["path"] == "/after-body":
            record["after_response"] = [
                await _receive_within(receive, WAIT),
                await _receive_within(receive, WAIT),
            ]
        self._keep(record)
