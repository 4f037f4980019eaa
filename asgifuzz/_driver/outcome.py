"""The outcome of one run: what the server saw, what escaped, what the models did."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from asgifuzz.models import Case
from asgifuzz.models._record import Recorder


@dataclass
class ServerResponse:
    """The response as the server received it."""

    started: bool = False
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    body_messages: int = 0
    complete: bool = False


def group_members(exc: BaseException) -> tuple[BaseException, ...]:
    """The members of an exception group of any kind, or ``()``.

    Besides the builtin groups, anyio 3 has its own ``ExceptionGroup`` (a
    ``BaseException``) and old trio its ``MultiError``; both keep ``exceptions``.
    """
    members = getattr(exc, "exceptions", None)
    if isinstance(members, list | tuple) and all(
        isinstance(m, BaseException) for m in members
    ):
        return tuple(members)
    return ()


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc``, its causes, contexts and group members (each once)."""
    seen: dict[int, BaseException] = {}
    todo = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen[id(e)] = e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += list(group_members(e))
    return list(seen.values())


@dataclass
class Outcome:
    """Everything one run of a case left behind (see `asgifuzz.run`)."""

    case: Case
    backend: str
    recorder: Recorder
    escaped: BaseException | None = None
    escaped_frames: list[tuple[str, int, str]] = field(default_factory=list)
    returned: bool = False
    hung: bool = False
    app_cancelled: bool = False
    timed_out: bool = False
    response: ServerResponse = field(default_factory=ServerResponse)
    pending_tasks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unraisable: list[str] = field(default_factory=list)

    def app_frames(self, limit: int = 3) -> tuple[str, ...]:
        """The innermost ``limit`` frames of the escaped exception that lie in the
        app under test, not in asgifuzz's models, the event loops or anyio."""
        skip = ("/asgifuzz/", "/anyio/", "/trio/", "/asyncio/", "/contextlib.py")
        inside = [
            f"{_short(path)}:{name}"
            for path, _, name in self.escaped_frames
            if not any(s in path for s in skip)
        ]
        return tuple(inside[-limit:])

    def freeze_exceptions(self) -> None:
        """Keep a summary of the escaped traceback, then drop every traceback.

        Tracebacks hold the app's frames, and with them any object the app
        leaked; dropping them lets a garbage collection reveal the leak.
        """
        if self.escaped is not None and self.escaped.__traceback__ is not None:
            # walk_tb, not extract_tb: the latter reads every frame's source line
            # and column positions (about 0.2 ms for a 20-frame traceback), and
            # only the file, line and function are kept.
            self.escaped_frames = [
                (frame.f_code.co_filename, lineno or 0, frame.f_code.co_name)
                for frame, lineno in traceback.walk_tb(self.escaped.__traceback__)
            ]
        rec = self.recorder
        for root in [self.escaped, *rec.raised, *rec.handled]:
            for e in _chain(root):
                e.__traceback__ = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary of the run (no transcript)."""
        r = self.response
        return {
            "backend": self.backend,
            "escaped": None if self.escaped is None else describe(self.escaped),
            "returned": self.returned,
            "hung": self.hung,
            "status": r.status,
            "response_complete": r.complete,
            "body": r.body.decode("latin-1"),
            "warnings": self.warnings,
            "pending_tasks": self.pending_tasks,
        }


def _short(path: str) -> str:
    """``.../site-packages/starlette/middleware/base.py`` -> ``starlette/middleware/base.py``."""
    return (
        path.split("site-packages/")[-1]
        if "site-packages/" in path
        else path.rsplit("/", 1)[-1]
    )


def describe(exc: BaseException) -> str:
    """``Type: message``, with group members, for messages and signatures."""
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    members = group_members(exc)
    if members:
        text += " [" + ", ".join(describe(e) for e in members) + "]"
    return text


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
    for e in rec.events:
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
    return kind


def mermaid(outcome: Outcome) -> str:
    """The timeline as a Mermaid sequence diagram (it renders in GitHub issues)."""
    rec = outcome.recorder
    ids = ["server", *(f"b{i}" for i in range(len(rec.boundaries)))]
    lines = ["sequenceDiagram", "    participant server as server (client side)"]
    lines += [
        f"    participant b{i} as {name.replace(':', ' ')}"
        for i, name in enumerate(rec.boundaries)
    ]
    for e in rec.events:
        if e.where < 0:
            lines.append(
                f"    Note over {ids[1]}: #{e.tick} {e.detail.replace(';', ',')[:80]}"
            )
            continue
        outer, inner = ids[e.where], ids[e.where + 1]
        text = f"#{e.tick} t={e.time:g} " + (
            _mermaid_text(e.message) or f"{e.kind} {e.detail.split(':')[0]}"
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
