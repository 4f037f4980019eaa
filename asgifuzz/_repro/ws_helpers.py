"""The helpers a websocket reproducer copies in when its code calls them: the
``Tap`` that records a boundary both ways, and the readings of what the taps
saw (`asgifuzz._repro.websocket`'s checks call them)."""

from __future__ import annotations

WS_HELPERS = {
    "Tap": '''\
class Tap:
    """Records the messages crossing one boundary, both ways; it adds no
    checkpoint, so it changes no interleaving."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = SEEN.setdefault("received", {}).setdefault(self.name, [])
        sent = SEEN.setdefault("sent", {}).setdefault(self.name, [])
        extensions = set(scope.get("extensions") or ())
        SEEN.setdefault("advertised", {})[self.name] = extensions

        async def tapped_receive() -> Message:
            message = await receive()
            received.append(message)
            return message

        async def tapped_send(message: Message) -> None:
            sent.append(message)
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)''',
    "frames_at": '''\
def frames_at(seen: dict[str, list[Message]], kind: str, outer: bool) -> list[Any]:
    """The frames of the ``kind`` messages at the outermost boundary (what the
    server gave or got), or at the innermost."""
    messages = next(iter(seen.values())) if outer else seen.get(INNER, [])
    data = [(m.get("bytes"), m.get("text", "")) for m in messages if m["type"] == kind]
    return [b if b is not None else t for b, t in data]''',
    "first_close": '''\
def first_close(seen: dict[str, list[Message]], kind: str, outer: bool) -> list[Any]:
    """The first ``kind`` message's (code, reason) at the outermost boundary, or
    at the innermost ([] if none)."""
    messages = next(iter(seen.values())) if outer else seen.get(INNER, [])
    found = [(m.get("code", 1000), m.get("reason") or "") for m in messages if m["type"] == kind]
    return found[:1]''',
    "protocol_problems": '''\
def protocol_problems(
    sent: list[Message], received: list[Message], offered: list[str]
) -> list[tuple[str, str]]:
    """What breaks the ASGI WebSocket protocol in what one side sent and was
    given, as (tag, why): the spec's order of messages, close codes a peer may
    send (RFC 6455 7.4) and reasons of at most 123 bytes (5.5)."""
    found, state = [], "handshake"
    for i, m in enumerate(sent):
        kind, at = m.get("type"), f"(message #{i + 1} of {len(sent)})"
        code, reason = m.get("code", 1000), m.get("reason") or ""
        sendable = code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014
        sendable = isinstance(code, int) and (sendable or 3000 <= code <= 4999)
        if not str(kind).startswith("websocket."):
            found.append(("type", f"sent {kind!r} on a websocket scope {at}"))
        elif state in ("closed", "denied"):
            found.append(("after-close", f"sent {kind} after the {state} session {at}"))
        elif state == "handshake" and kind == "websocket.accept":
            if m.get("subprotocol") not in (None, *offered):
                found.append(("subprotocol", f"accepted {m['subprotocol']!r} {at}"))
            state = "open"
        elif state in ("handshake", "open") and kind == "websocket.close":
            if not sendable:
                found.append(("code", f"sent close code {code!r} {at}"))
            if not isinstance(reason, str):
                found.append(("reason", f"sent a close reason {reason!r} {at}"))
            elif len(reason.encode()) > 123:
                found.append(("reason", f"sent a close reason over 123 bytes {at}"))
            state = "closed"
        elif state == "handshake" and kind == "websocket.http.response.start":
            state = "denial"
        elif state == "denial" and kind == "websocket.http.response.body":
            state = "denial" if m.get("more_body", False) else "denied"
        elif state == "open" and kind == "websocket.send":
            if (m.get("bytes") is None) == (m.get("text") is None):
                found.append(("frame", f"sent neither or both of text, bytes {at}"))
        else:
            found.append(("order", f"sent {kind} in state {state!r} {at}"))
    if received and received[0].get("type") != "websocket.connect":
        found.append(("connect", f"was given {received[0].get('type')} first"))
    kinds = [m.get("type") for m in received]
    if "websocket.disconnect" in kinds:
        later = kinds[kinds.index("websocket.disconnect") :]
        if set(later) != {"websocket.disconnect"}:
            found.append(("after-disconnect", "was given a message after a disconnect"))
    return found''',
}
