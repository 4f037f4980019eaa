"""Invariant I2: a valid ASGI HTTP message sequence at every boundary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgifuzz._driver.extensions import MESSAGE_TYPES
from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._record import Event

#: The extensions' message types (`asgifuzz._driver.extensions`).
EXTENSION_MESSAGES = frozenset(MESSAGE_TYPES.values())


def message_sequences(f: Facts) -> list[Violation]:
    """I2: every boundary's messages follow the ASGI HTTP protocol."""
    out: list[Violation] = []
    for label, sends, received in zip(f.boundaries, f.sent, f.received, strict=False):
        if sends:
            _sent(label, sends, out)
        if len(received) > 1:
            _received(label, received, out)
    return out


def _sent(label: str, sends: Sequence[Event], out: list[Violation]) -> None:
    """What the app's side sent across one boundary: start, then body messages."""
    started = ended = False
    for n, e in enumerate(sends):
        m: dict[str, Any] = e.message or {}
        kind = m.get("type")
        if kind in EXTENSION_MESSAGES:  # judged by X1-X3 (_oracles.extensions)
            ended = ended or kind == "http.response.pathsend"
            continue
        if ended:
            at = _at(label, n, kind)
            out.append(
                Violation(
                    "I2", f"{at} was sent after the final body message", "after-final"
                )
            )
            break
        if kind == "http.response.start":
            if started:
                at = _at(label, n, kind)
                out.append(
                    Violation(
                        "I2", f"{at}: http.response.start sent twice", "start-twice"
                    )
                )
                break
            status = m.get("status")
            if type(status) is not int or not 100 <= status <= 599:
                at = _at(label, n, kind)
                out.append(
                    Violation(
                        "I2",
                        f"{at}: status {status!r} is not an int in [100, 599]",
                        "status",
                    )
                )
            for h in m.get("headers", []):
                if not (
                    len(h) == 2 and isinstance(h[0], bytes) and isinstance(h[1], bytes)
                ):
                    at = _at(label, n, kind)
                    out.append(
                        Violation(
                            "I2",
                            f"{at}: headers are not (bytes, bytes) pairs",
                            "headers",
                        )
                    )
                    break
            started = True
        elif kind == "http.response.body":
            if not started:
                at = _at(label, n, kind)
                out.append(
                    Violation(
                        "I2", f"{at}: body before http.response.start", "body-first"
                    )
                )
                break
            more = m.get("more_body", False)
            if not isinstance(m.get("body", b""), bytes) or not isinstance(more, bool):
                at = _at(label, n, kind)
                out.append(
                    Violation(
                        "I2", f"{at}: body must be bytes, more_body a bool", "body-type"
                    )
                )
            ended = not more
        else:
            at = _at(label, n, kind)
            out.append(
                Violation("I2", f"{at}: not a valid HTTP response message", "type")
            )
            break


def _received(
    label: str, received: Sequence[dict[str, Any]], out: list[Violation]
) -> None:
    """What the app's side received: no request message after the last one."""
    body_done = False
    for n, m in enumerate(received):
        if m.get("type") == "http.request":
            if body_done:
                out.append(
                    Violation(
                        "I2",
                        f"at the boundary into {label}, received message #{n + 1} is "
                        "http.request after the request body was complete",
                        "request-after-body",
                    )
                )
                return
            body_done = not m.get("more_body", False)


def _at(label: str, n: int, kind: object) -> str:
    return f"at the boundary into {label}, message #{n + 1} {kind!r}"
