"""Invariants X1-X3: the ASGI HTTP extensions through a stack.

- X1: ``http.response.trailers`` only after the final body of a response whose
  start announced them (``trailers: True``), at every boundary; and trailers
  the endpoint sent reach the server, which advertised the extension (a layer
  that does not pass them on must take the extension out of the scope).
- X2: the body of a response sent with ``http.response.pathsend`` is the
  file's content; so is the body of one the endpoint sent with
  ``http.response.zerocopysend`` messages (mixed with body messages) from one
  file (``X2:zerocopysend``) (both judged where no layer rewrites bodies, and
  the response is not content-encoded).
- X3: an extension's message crosses a boundary only where the scope that
  crossed it advertised the extension; a path is sent at most once, after the
  start and never mixed with body messages (nor zero-copy sends, which count
  as body messages); an early hint comes before any
  body: a layer that does not understand an extension produces no invalid
  sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asgifuzz._driver.extensions import (
    EARLY_HINT,
    MESSAGE_TYPES,
    PATHSEND,
    TRAILERS,
    ZEROCOPYSEND,
)
from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation

#: Layer kinds that rewrite the response body (X2 is not judged under them).
_REWRITERS = ("transform_body", "replace_body")


def _at(label: str, n: int, kind: object) -> str:
    return f"at the boundary into {label}, message #{n + 1} {kind!r}"


def trailers(f: Facts) -> list[Violation]:
    """X1: trailers only after a response announcing them, and none lost."""
    for label, sends in zip(f.boundaries, f.sent, strict=False):
        announced = body_done = False
        for n, e in enumerate(sends):
            m: dict[str, Any] = e.message or {}
            kind = m.get("type")
            if kind == "http.response.start":
                announced = bool(m.get("trailers", False))
            elif kind in ("http.response.body", PATHSEND, ZEROCOPYSEND):
                body_done = body_done or not m.get("more_body", False)
            elif kind == TRAILERS and not (announced and body_done):
                why = (
                    "the start did not announce trailers"
                    if not announced
                    else "before the final body"
                )
                tag = "unannounced" if not announced else "early"
                return [Violation("X1", f"{_at(label, n, kind)}: {why}", tag)]
    sent = [
        m
        for e in (f.sent[-1] if f.sent else [])
        if (m := e.message or {}).get("type") == TRAILERS and m.get("headers")
    ]
    advertised = TRAILERS in f.outcome.recorder.advertised.get(0, ())
    response = f.response
    if sent and advertised and response.complete and not response.trailers:
        return [
            Violation(
                "X1",
                f"the endpoint sent trailers {sent[0].get('headers')!r} and the "
                "server, which advertised http.response.trailers, got none (a "
                "layer dropped them without taking the extension out of the scope)",
                "lost",
            )
        ]
    return []


def _judged(f: Facts) -> bool:
    """Whether X2 judges the body: a complete response, through no layer that
    rewrites bodies (nor the user's), and not content-encoded."""
    response = f.response
    if not response.complete:
        return False
    if any(
        la.family == "user" or la.behaviour in _REWRITERS for la in f.case.stack.layers
    ):
        return False
    return not any(k.lower() == b"content-encoding" for k, _ in response.headers)


def pathsend_content(f: Facts) -> list[Violation]:
    """X2: a pathsend response's body is the file's content, and so is a
    response the endpoint sent with zero-copy sends of one file."""
    response = f.response
    if response.pathsend is None:
        return _zerocopy_content(f)
    if not _judged(f):
        return []
    content = Path(response.pathsend).read_bytes()
    if response.body == content:
        return []
    return [
        Violation(
            "X2",
            f"the server got {len(response.body)} bytes for a pathsend of "
            f"{response.pathsend} ({len(content)} bytes), not the file's content",
        )
    ]


def _zerocopy_content(f: Facts) -> list[Violation]:
    """X2:zerocopysend: the model ``zerocopysend`` endpoint's zero-copy sends
    (and the body messages between them) sent one whole file; the server got
    its content. (An app of the user's may send part of a file: not judged.)"""
    if f.case.endpoint.kind != "zerocopysend" or f.case.app:
        return []
    files = {
        m["file"].name
        for e in (f.sent[-1] if f.sent else [])
        if (m := e.message or {}).get("type") == ZEROCOPYSEND and "file" in m
    }
    if len(files) != 1 or not _judged(f):
        return []
    path = str(files.pop())
    content, got = Path(path).read_bytes(), f.response.body
    if got == content:
        return []
    return [
        Violation(
            "X2",
            f"the server got {len(got)} bytes for a response the endpoint sent "
            f"with http.response.zerocopysend of {path} ({len(content)} bytes), "
            "not the file's content",
            "zerocopysend",
        )
    ]


def extension_sequences(f: Facts) -> list[Violation]:
    """X3: extension messages only where advertised, in a valid order."""
    advertised = f.outcome.recorder.advertised
    for where, (label, sends) in enumerate(zip(f.boundaries, f.sent, strict=False)):
        paths = bodies = 0
        for n, e in enumerate(sends):
            m: dict[str, Any] = e.message or {}
            kind = m.get("type")
            if kind in MESSAGE_TYPES and kind not in advertised.get(where, ()):
                return [
                    Violation(
                        "X3",
                        f"{_at(label, n, kind)}: the scope that crossed this "
                        f"boundary does not advertise {kind}",
                        "unadvertised",
                    )
                ]
            if kind in ("http.response.body", ZEROCOPYSEND):
                bodies += 1
            elif kind == PATHSEND:
                paths += 1
            elif kind == EARLY_HINT and (bodies or paths):
                return [
                    Violation(
                        "X3",
                        f"{_at(label, n, kind)}: an early hint after the body",
                        "late",
                    )
                ]
            if paths and (bodies or paths > 1):
                return [
                    Violation(
                        "X3",
                        f"{_at(label, n, kind)}: a pathsend mixed with body messages "
                        "or sent twice",
                        "mixed",
                    )
                ]
    return []
