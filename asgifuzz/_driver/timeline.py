"""The run as people read it: a text timeline, or a Mermaid sequence diagram."""

from __future__ import annotations

from typing import Any

from asgifuzz._driver.outcome import Outcome
from asgifuzz.models._record import Event, Recorder


def _show(message: dict[str, Any] | None) -> str:
    if not message:
        return ""
    m = dict(message)
    kind = m.pop("type", "?")
    parts = []
    for key, value in m.items():
        if key == "headers":
            value = ", ".join(
                f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in value
            )
            value = f"[{value}]"
        elif isinstance(value, bytes) and len(value) > 40:
            value = value[:40] + b"..."
        parts.append(f"{key}={value!r}" if key != "headers" else f"headers={value}")
    return f"{kind} " + " ".join(parts)


def _events(rec: Recorder) -> list[Event]:
    """The run's events, with a lifespan session's in their logical order."""
    if rec.lifespan is None:
        return rec.events
    return sorted([*rec.events, *rec.lifespan.events], key=lambda e: e.tick)


def timeline(outcome: Outcome) -> str:
    """The run as text a person can read: each event in logical time, each
    message at the boundary it crossed ("server -> X": the app's side received
    it; "X -> server": the app's side sent it)."""
    rec = outcome.recorder
    names = rec.boundaries
    lines = [
        f"backend: {outcome.backend}; boundaries: "
        + " | ".join(f"{i}:{n}" for i, n in enumerate(names))
    ]
    for e in _events(rec):
        if e.where < 0:
            what = f"  . {e.detail}"
        else:
            outer = "server" if e.where == 0 else names[e.where - 1]
            inner = names[e.where]
            if e.kind == "receive":
                what = f"{outer} -> {inner}: {_show(e.message)}"
            elif e.kind == "send":
                what = f"{inner} -> {outer}: {_show(e.message)}"
            else:
                what = f"{inner} {e.kind}s" + (f" {e.detail}" if e.detail else "")
        lines.append(f"#{e.tick:<4} t={e.time:<6g} {what}")
    lines.append(f"outcome: {outcome.summary()}")
    return "\n".join(lines)


def _mermaid_text(message: dict[str, Any] | None) -> str:
    if not message:
        return ""
    kind = str(message.get("type", "?")).removeprefix("http.")
    if "status" in message:
        kind += f" {message['status']}"
    if "body" in message:
        kind += f" {len(message['body'])}B"
    if message.get("more_body"):
        kind += " (more)"
    # A websocket frame's payload, a close's code and reason, a lifespan failure's
    # message: shortened, and without what Mermaid reads as syntax (; # :).
    if message.get("bytes") is not None:
        kind += f" {len(message['bytes'])}B"
    for key in ("text", "code", "reason", "message"):
        value = message.get(key)
        if value not in (None, ""):
            shown = repr(value) if key in ("text", "reason") else str(value)
            kind += " " + _safe(shown if len(shown) <= 24 else f"{shown[:21]}...")
    return kind


def _safe(text: str) -> str:
    return text.translate({ord(";"): ",", ord("#"): " ", ord(":"): " "})


def mermaid(outcome: Outcome) -> str:
    """The timeline as a Mermaid sequence diagram (it renders in GitHub issues)."""
    rec = outcome.recorder
    ids = ["server", *(f"b{i}" for i in range(len(rec.boundaries)))]
    lines = ["sequenceDiagram", "    participant server as server (client side)"]
    lines += [
        f"    participant b{i} as {name.replace(':', ' ')}"
        for i, name in enumerate(rec.boundaries)
    ]
    for e in _events(rec):
        if e.where < 0:
            lines.append(
                f"    Note over {ids[1]}: #{e.tick} {e.detail.replace(';', ',')[:80]}"
            )
            continue
        outer, inner = ids[e.where], ids[e.where + 1]
        text = f"#{e.tick} t={e.time:g} " + (
            _mermaid_text(e.message) or f"{e.kind} {e.exc_type}"
        )
        if e.kind == "receive":
            lines.append(f"    {outer}->>{inner}: {text}")
        elif e.kind == "send":
            lines.append(f"    {inner}->>{outer}: {text}")
        elif e.kind == "raise":
            lines.append(f"    {inner}--x{outer}: {text}")
        else:
            lines.append(f"    {inner}-->>{outer}: #{e.tick} returns")
    return "\n".join(lines) + "\n"
