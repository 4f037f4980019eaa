"""A `Session`'s JSON form (the case's ``websocket`` key), strict like the rest:
every field is checked against its registry and range, naming the field."""

from __future__ import annotations

from typing import Any

from asgifuzz.models._compact import body_from_data, segment_to_data
from asgifuzz.models._reader import Reader, shown
from asgifuzz.models._websocket import (
    MAX_COUNT,
    MAX_FRAME,
    MAX_STEPS,
    WS_ENDPOINT_KINDS,
    WS_STEP_KINDS,
    Handshake,
    Session,
    Step,
    WsEndpoint,
)

_MAX_NAME = 256


def session_to_data(session: Session) -> dict[str, Any]:
    """The session as JSON-ready data (bytes payloads as latin-1 text)."""
    hs, ep = session.handshake, session.endpoint
    return {
        "handshake": {
            "path": hs.path,
            "subprotocols": list(hs.subprotocols),
            "headers": [list(h) for h in hs.headers],
        },
        "endpoint": {
            "kind": ep.kind,
            "subprotocol": ep.subprotocol,
            "count": ep.count,
            "code": ep.code,
            "reason": ep.reason,
        },
        "steps": [_step_data(s) for s in session.steps],
    }


def _step_data(step: Step) -> dict[str, Any]:
    payload = step.payload
    # Bytes as latin-1 text, or long runs as {"repeat": unit, "times": n}.
    text = segment_to_data(payload) if isinstance(payload, bytes) else payload
    return {
        "kind": step.kind,
        "payload": text,
        "after": step.after,
        "code": step.code,
        "reason": step.reason,
    }


def session_from_data(r: Reader, raw: object) -> Session:
    """Read the ``websocket`` key of a case; `CaseFormatError` names the field."""
    top = r.obj(raw, "websocket", {"handshake", "endpoint", "steps"})
    hs = r.obj(
        top.get("handshake", {}),
        "websocket.handshake",
        {"path", "subprotocols", "headers"},
    )
    path = r.str_(hs, "path", "websocket.handshake", "/ws", max_length=8192)
    if not path.startswith("/"):
        raise r.fail(
            "websocket.handshake.path", f"is {shown(path)}; must start with '/'"
        )
    subprotocols = _strings(
        r, hs.get("subprotocols", []), "websocket.handshake.subprotocols"
    )
    headers = _pairs(r, hs.get("headers", []), "websocket.handshake.headers")
    where = "websocket.endpoint"
    ep = r.obj(
        top.get("endpoint", {}),
        where,
        {"kind", "subprotocol", "count", "code", "reason"},
    )
    endpoint = WsEndpoint(
        kind=r.choice(ep, "kind", where, WS_ENDPOINT_KINDS, "echo"),
        subprotocol=r.str_(ep, "subprotocol", where, max_length=_MAX_NAME),
        count=r.int_({"count": ep.get("count", 1)}, "count", where, 0, MAX_COUNT),
        code=r.int_({"code": ep.get("code", 1000)}, "code", where, 1000, 4999),
        reason=r.str_(ep, "reason", where, max_length=123),
    )
    raw_steps = top.get("steps", [])
    if not isinstance(raw_steps, list) or len(raw_steps) > MAX_STEPS:
        raise r.fail(
            "websocket.steps",
            f"is {shown(raw_steps)}; must be a list of at most {MAX_STEPS} steps",
        )
    steps = tuple(_step(r, s, f"websocket.steps[{i}]") for i, s in enumerate(raw_steps))
    session = Session(
        handshake=Handshake(path=path, subprotocols=subprotocols, headers=headers),
        endpoint=endpoint,
        steps=steps,
    )
    problem = session.problem()
    if problem:
        raise r.fail("websocket", problem)
    return session


def _step(r: Reader, raw: object, where: str) -> Step:
    d = r.obj(raw, where, {"kind", "payload", "after", "code", "reason"})
    kind = r.choice(d, "kind", where, WS_STEP_KINDS, "text")
    payload: str | bytes
    if kind == "bytes":
        raw_payload = [d.get("payload", "")]
        payload = body_from_data(r, raw_payload, 1, field=f"{where}.payload")[0]
        if len(payload) > MAX_FRAME:
            raise r.fail(f"{where}.payload", f"holds over {MAX_FRAME} bytes")
    else:
        payload = r.str_(d, "payload", where, max_length=MAX_FRAME)
    return Step(
        kind=kind,
        payload=payload,
        after=r.int_({"after": d.get("after", 0)}, "after", where, -1, MAX_COUNT),
        code=r.int_({"code": d.get("code", 1000)}, "code", where, 1000, 4999),
        reason=r.str_(d, "reason", where, max_length=123),
    )


def _strings(r: Reader, raw: object, where: str) -> tuple[str, ...]:
    if (
        not isinstance(raw, list)
        or len(raw) > 32
        or not all(
            isinstance(s, str) and 0 < len(s) <= _MAX_NAME and s.isascii() for s in raw
        )
    ):
        raise r.fail(
            where, f"is {shown(raw)}; must be a list of at most 32 ASCII names"
        )
    return tuple(raw)


def _pairs(r: Reader, raw: object, where: str) -> tuple[tuple[str, str], ...]:
    ok = isinstance(raw, list) and len(raw) <= 100
    pairs: list[tuple[str, str]] = []
    for h in raw if isinstance(raw, list) else []:
        if not (
            isinstance(h, list)
            and len(h) == 2
            and all(
                isinstance(x, str) and len(x) <= 8192 and max(x, default="\0") <= "\xff"
                for x in h
            )
        ):
            ok = False
            break
        pairs.append((h[0], h[1]))
    if not ok:
        raise r.fail(
            where,
            f"is {shown(raw)}; must be a list of at most 100 [name, value] latin-1 pairs",
        )
    return tuple(pairs)
