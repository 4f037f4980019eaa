"""A WebSocket session as plain data: the handshake, the endpoint's behaviour and
the client's script (the server's behaviour is the case's `Server` profile, as
for HTTP; see `asgifuzz._driver.websocket`).

The ASGI WebSocket spec (``specs/www.rst``, *WebSocket*) names the messages; the
close codes a peer may send are RFC 6455 §7.4 (1005, 1006 and 1015 never go on
the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgifuzz.models._compact import expression

#: The endpoint's behaviours, simplest first (``sampled_from`` shrinks forward).
WS_ENDPOINT_KINDS = (
    "echo",
    "read_all",
    "iterate",
    "broadcast",
    "close",
    "reject",
    "deny",
    "raise_before",
    "raise_after",
)
#: What the client does at a step: send a frame, close with a code, or vanish.
WS_STEP_KINDS = ("text", "bytes", "close", "drop")
#: The websocket-aware built-in layers (family ``ws``), simplest first.
WS_BEHAVIOURS = ("passthrough", "rewrite", "auth", "read_first")
WS_LAYER_KINDS = tuple(f"ws.{b}" for b in WS_BEHAVIOURS)
#: The server profiles whose WebSocket side is modelled (measured on the real
#: servers by the conformance probe; ``strict`` is the spec to the letter).
WS_SERVERS = ("uvicorn", "hypercorn", "daphne", "granian", "strict")
#: The handshake header the ``ws.auth`` layer admits (it closes with 1008 without).
AUTH_HEADER = "authorization"
#: The header and the subprotocol the ``ws.rewrite`` layer adds.
REWRITE_HEADER, REWRITE_SUBPROTOCOL = "x-ws-rewritten", "rewritten"
#: The denial response of a ``deny`` endpoint.
DENIAL_STATUS, DENIAL_BODY = 403, b"denied"
#: The most steps in a client's script, frames in a broadcast, bytes in a frame.
MAX_STEPS, MAX_COUNT, MAX_FRAME = 1000, 1000, 1 << 20


def sendable_code(code: int) -> bool:
    """Whether a peer may send close ``code`` (RFC 6455 §7.4.1-2: 1000-1003,
    1007-1014 are defined; 3000-4999 are for libraries and applications)."""
    return (
        code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999
    )


@dataclass(frozen=True)
class Step:
    """One thing the client does.

    Attributes:
        kind: one of `WS_STEP_KINDS`; ``close`` and ``drop`` end the script.
        payload: the frame's text (``text``) or bytes (``bytes``).
        after: how many messages of the endpoint the client has received before
            it acts; ``-1`` (a ``close``/``drop`` that is the only step): right
            after the handshake request, before the app has answered it.
        code: the close code of a ``close`` (``drop`` is seen as 1006).
        reason: the close reason of a ``close``.
    """

    kind: str
    payload: str | bytes = ""
    after: int = 0
    code: int = 1000
    reason: str = ""

    def __repr__(self) -> str:
        # A long frame as a run (b'\x00' * 65536): reports stay readable, and
        # under Hypothesis' 30 kB repr limit.
        p = self.payload
        shown = (
            expression(p)
            if isinstance(p, bytes)
            else expression(p.encode(), lit=lambda b: repr(b.decode()))
            if p.isascii()
            else repr(p)
        )
        return (
            f"Step(kind={self.kind!r}, payload={shown}, after={self.after}, "
            f"code={self.code}, reason={self.reason!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis' pretty printer bypasses __repr__ for dataclasses.
        printer.text(repr(self))


@dataclass(frozen=True)
class Handshake:
    """The client's opening handshake: the path, the offered subprotocols and
    extra headers (lower-case names, latin-1 values)."""

    path: str = "/ws"
    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WsEndpoint:
    """The WebSocket endpoint at the bottom of the stack.

    Attributes:
        kind: one of `WS_ENDPOINT_KINDS`: ``echo`` sends back every frame;
            ``read_all`` reads until the client leaves; ``iterate`` echoes each
            text frame in Starlette's documented idiom, an ``async for`` over
            ``iter_text()`` (its client sends text frames only: a bytes frame
            makes ``iter_text`` raise ``KeyError: 'text'``); ``broadcast`` sends
            ``count`` frames, then closes with ``code``/``reason``; ``close``
            accepts, then closes; ``reject`` closes before accepting; ``deny``
            sends a denial response (`DENIAL_STATUS`, body `DENIAL_BODY`) where
            the server advertises ``websocket.http.response``, else closes;
            ``raise_before``/``raise_after`` raise before accepting / after the
            first message.
        subprotocol: the subprotocol it accepts with ("" for none).
        count: the frames a ``broadcast`` sends.
        code, reason: its close code and reason.
    """

    kind: str = "echo"
    subprotocol: str = ""
    count: int = 1
    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Session:
    """A whole WebSocket session: the handshake, the endpoint, the client's steps."""

    handshake: Handshake = Handshake()
    endpoint: WsEndpoint = WsEndpoint()
    steps: tuple[Step, ...] = ()

    def problem(self) -> str:
        """What makes the session impossible ("" if nothing): a close or drop
        that is not last, a frame during the handshake, a close code a client
        cannot send."""
        for i, step in enumerate(self.steps):
            if step.kind in ("close", "drop") and i != len(self.steps) - 1:
                return f"steps[{i}] is a {step.kind}, which must be the last step"
            if step.after < 0 and step.kind not in ("close", "drop"):
                return f"steps[{i}] sends a frame during the handshake (after=-1)"
            if step.after < 0 and i:
                return f"steps[{i}] leaves during the handshake (after=-1) after steps"
            if step.kind == "close" and not sendable_code(step.code):
                return f"steps[{i}].code is {step.code}, which a client cannot send"
            if isinstance(step.payload, bytes) != (step.kind == "bytes"):
                return f"steps[{i}].payload does not match its kind {step.kind!r}"
        return ""
