"""The WebSocket invariants W1-W4 (W5, the backends agree, is `agreement`'s,
renamed in `asgifuzz._oracles.verdict`).

- W1: a valid message sequence at every boundary (the ASGI WebSocket spec:
  ``websocket.connect`` first; accept, close or a denial response before any
  ``websocket.send``; nothing after a close or a complete denial; close codes a
  peer may send, with a reason that is a str of at most 123 bytes (RFC 6455
  §5.5: a control frame's payload is at most 125 bytes); a denial only where the server advertised it; an accepted
  subprotocol is one the client offered; no ``http.*`` message).
- W2: the frames the client sent reach the endpoint unchanged and in order, and
  the frames the endpoint sent reach the server (every built-in layer passes
  frames on as they are; a user's layer is assumed to).
- W3: close codes and reasons pass unchanged: the endpoint's close reaches the
  server, the client's ``websocket.disconnect`` reaches the endpoint.
- W4: the app ends cleanly: it returns (no hang), and nothing escapes but what a
  model raised, or, once the client has left, the framework's disconnect signal
  (a user's app, ``case.app``, may raise unless the client's leaving reached
  it: the server closes with 1011, as for HTTP's 500).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._record import Recorder
from asgifuzz.models._websocket import sendable_code

#: What escapes an app cleanly once the client is gone: Starlette's signal and
#: the servers' ``send()`` error (an ``OSError`` by spec 2.4).
DISCONNECT_SIGNALS = ("WebSocketDisconnect", "ClientDisconnected")
_DENIAL = "websocket.http.response"
_GONE = "websocket.disconnect"


def _events(f: Facts, where: int, kind: str) -> list[dict[str, Any]]:
    return [
        e.message
        for e in f.outcome.recorder.events
        if e.where == where and e.kind == kind and e.message is not None
    ]


def _boundaries(f: Facts) -> range:
    return range(len(f.outcome.recorder.boundaries))


def _name(f: Facts, where: int) -> str:
    names = f.outcome.recorder.boundaries
    return "the server" if where == 0 else names[where - 1]


def sequences(f: Facts) -> list[Violation]:
    """W1 at every boundary: what the app side sent, and what it was given."""
    out: list[Violation] = []
    offered = f.case.websocket.handshake.subprotocols
    for where in _boundaries(f):
        inner = f.outcome.recorder.boundaries[where]
        for tag, why in _send_problems(_events(f, where, "send"), offered):
            out.append(
                Violation("W1", f"{inner} sent {why} (to {_name(f, where)})", tag)
            )
        for tag, why in _receive_problems(_events(f, where, "receive")):
            out.append(Violation("W1", f"{inner} was given {why}", tag))
    return out


def _send_problems(
    sent: Sequence[dict[str, Any]], offered: Sequence[str]
) -> list[tuple[str, str]]:
    state, found = "handshake", []
    for i, m in enumerate(sent):
        kind, at = m.get("type"), f"(message #{i + 1} of {len(sent)})"
        if not str(kind).startswith("websocket."):
            found.append(("type", f"{kind!r} on a websocket scope {at}"))
        elif state in ("closed", "denied"):
            found.append(
                ("after-close", f"{kind} after the {state} session ended {at}")
            )
        elif state == "handshake" and kind == "websocket.accept":
            sub = m.get("subprotocol")
            if sub is not None and sub not in offered:
                found.append(("subprotocol", f"accept with {sub!r}, not offered {at}"))
            state = "open"
        elif state in ("handshake", "open") and kind == "websocket.close":
            code = m.get("code", 1000)
            if not (isinstance(code, int) and sendable_code(code)):
                found.append(
                    ("code", f"close code {code!r}, which no peer may send {at}")
                )
            reason = m.get("reason") or ""
            if not isinstance(reason, str):
                why = f"a close reason that is a {type(reason).__name__}, not a str"
                found.append(("reason", f"{why} {at}"))
            elif len(reason.encode()) > 123:
                found.append(("reason", f"a close reason over 123 bytes {at}"))
            state = "closed"
        elif state == "handshake" and kind == f"{_DENIAL}.start":
            state = "denial"
        elif state == "denial" and kind == f"{_DENIAL}.body":
            state = "denial" if m.get("more_body", False) else "denied"
        elif state == "open" and kind == "websocket.send":
            if (m.get("bytes") is None) == (m.get("text") is None):
                found.append(
                    (
                        "frame",
                        f"a websocket.send without exactly one of text, bytes {at}",
                    )
                )
        else:
            found.append(("order", f"{kind} in state {state!r} {at}"))
    return found


def _receive_problems(got: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    if got and got[0].get("type") != "websocket.connect":
        found.append(("connect", f"{got[0].get('type')} before websocket.connect"))
    gone = False
    for i, m in enumerate(got):
        kind = m.get("type")
        if gone and kind != "websocket.disconnect":
            found.append(
                ("after-disconnect", f"{kind} after websocket.disconnect (#{i + 1})")
            )
        gone = gone or kind == "websocket.disconnect"
    return found


def _frame(m: dict[str, Any]) -> str | bytes:
    data = m.get("bytes")
    frame: str | bytes = data if data is not None else m.get("text", "")
    return frame


def _frames(f: Facts, where: int, kind: str, wanted: str) -> list[str | bytes]:
    return [_frame(m) for m in _events(f, where, kind) if m.get("type") == wanted]


def frames(f: Facts) -> list[Violation]:
    """W2: frames cross every layer as they are, in order, both ways."""
    inner = len(f.outcome.recorder.boundaries) - 1
    if inner <= 0:
        return []
    out = []
    given = _frames(f, 0, "receive", "websocket.receive")
    got = _frames(f, inner, "receive", "websocket.receive")
    if got != given:
        out.append(
            Violation(
                "W2",
                f"the client's frames {given!r} reached the endpoint as {got!r}",
                "client",
            )
        )
    made = _frames(f, inner, "send", "websocket.send")
    sent = _frames(f, 0, "send", "websocket.send")
    if made != sent:
        out.append(
            Violation(
                "W2",
                f"the endpoint's frames {made!r} reached the server as {sent!r}",
                "endpoint",
            )
        )
    return out


def _close(m: dict[str, Any]) -> tuple[Any, Any]:
    return m.get("code", 1000), m.get("reason") or ""


def closes(f: Facts) -> list[Violation]:
    """W3: the endpoint's close and the client's disconnect pass unchanged."""
    inner = len(f.outcome.recorder.boundaries) - 1
    if inner <= 0:
        return []
    out = []
    for wanted, kind, a, b, who in (
        ("websocket.close", "send", inner, 0, "the endpoint's close"),
        ("websocket.disconnect", "receive", 0, inner, "the client's disconnect"),
    ):
        first = [_close(m) for m in _events(f, a, kind) if m.get("type") == wanted][:1]
        then = [_close(m) for m in _events(f, b, kind) if m.get("type") == wanted][:1]
        if first and then != first:
            seen = f"as {then[0]}" if then else "not at all"
            tag = "server" if kind == "send" else "endpoint"
            out.append(Violation("W3", f"{who} {first[0]} arrived {seen}", tag))
    return out


def _reached(rec: Recorder) -> bool:
    """Whether the client's leaving reached the app at the server's boundary."""
    left = rec.disconnected
    return left is not None and any(
        e.where == 0
        and e.tick > left
        and (
            e.kind == "send"
            or (e.kind == "receive" and (e.message or {}).get("type") == _GONE)
        )
        for e in rec.events
    )


def clean_end(f: Facts) -> list[Violation]:
    """W4: the app returns, and only a model's exception or (after the client
    left) the disconnect signal escapes it."""
    o = f.outcome
    gone = o.recorder.disconnected is not None
    if o.hung:
        return [
            Violation(
                "W4",
                "the app never returned" + (" after the client left" if gone else ""),
                "hang",
            )
        ]
    exc = f.escaped
    if exc is None or id(exc) in f.raised_ids:
        return []
    name = type(exc).__name__
    if gone and (name in DISCONNECT_SIGNALS or isinstance(exc, OSError)):
        return []
    if f.app_mode and not (gone and _reached(o.recorder)):
        # A user's app: its own exceptions are its business (as I1), unless
        # the disconnect reached it: it was given websocket.disconnect, or sent
        # once the client was gone. (A frame that came before the client left
        # and makes the app raise is no disconnect's doing, whenever it left.)
        return []
    when = "after the client left" if gone else "while the client was connected"
    return [
        Violation(
            "W4", f"{name}: {exc} escaped the app {when}", name, frames=o.app_frames()
        )
    ]
