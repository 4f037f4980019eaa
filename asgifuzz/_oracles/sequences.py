"""Invariant I2: a valid ASGI HTTP message sequence at every boundary."""

from __future__ import annotations

from typing import Any

from asgifuzz._oracles.violations import Violation
from asgifuzz.models._record import Recorder


def message_sequences(rec: Recorder) -> list[Violation]:
    """I2: every boundary's messages follow the ASGI HTTP protocol."""
    out: list[Violation] = []

    def fail(message: str, tag: str) -> None:
        out.append(Violation("I2", message, tag))

    # One pass over the transcript: the messages sent and received at each boundary.
    sent: dict[int, list[dict[str, Any]]] = {}
    received: dict[int, list[dict[str, Any]]] = {}
    for e in rec.events:
        if e.kind == "send":
            sent.setdefault(e.where, []).append(e.message or {})
        elif e.kind == "receive":
            received.setdefault(e.where, []).append(e.message or {})

    for where, label in enumerate(rec.boundaries):
        started = ended = False
        for n, m in enumerate(sent.get(where, ())):
            kind = m.get("type")
            at = f"at the boundary into {label}, message #{n + 1} {kind!r}"
            if ended:
                fail(
                    f"{at} was sent after the final body message",
                    "after-final",
                )
                break
            if kind == "http.response.start":
                status = m.get("status")
                headers = m.get("headers", [])
                if started:
                    fail(f"{at}: http.response.start sent twice", "start-twice")
                    break
                if type(status) is not int or not 100 <= status <= 599:
                    fail(
                        f"{at}: status {status!r} is not an int in [100, 599]",
                        "status",
                    )
                if not all(
                    len(h) == 2 and all(isinstance(x, bytes) for x in h)
                    for h in headers
                ):
                    fail(
                        f"{at}: headers are not (bytes, bytes) pairs",
                        "headers",
                    )
                started = True
            elif kind == "http.response.body":
                if not started:
                    fail(f"{at}: body before http.response.start", "body-first")
                    break
                if not isinstance(m.get("body", b""), bytes) or not isinstance(
                    m.get("more_body", False), bool
                ):
                    fail(
                        f"{at}: body must be bytes, more_body a bool",
                        "body-type",
                    )
                ended = not m.get("more_body", False)
            else:
                fail(f"{at}: not a valid HTTP response message", "type")
                break
        body_done = False
        for n, m in enumerate(received.get(where, ())):
            if m.get("type") == "http.request" and body_done:
                fail(
                    f"at the boundary into {label}, received message #{n + 1} is "
                    "http.request after the request body was complete",
                    "request-after-body",
                )
                break
            body_done = body_done or (
                m.get("type") == "http.request" and not m.get("more_body", False)
            )
    return out
