"""Invariants L1-L4: the lifespan protocol through a stack (lifespan sessions).

Read from ``Recorder.lifespan`` (every lifespan message at every boundary,
boundary 0 the server's) and the server's side (`Outcome.lifespan`). Only
what happened before the server gave up waiting for startup is judged: a
cancelled lifespan task may report anything on its way out (Starlette reports
the cancellation as ``lifespan.startup.failed``).

- L1: each layer passes the server's messages down and the app's messages up
  unchanged, none lost and none made up (a layer may answer for an app below
  it that was called and does not support lifespan).
- L2: when the app's startup fails (it reports ``lifespan.startup.failed``, or
  raises once it got ``lifespan.startup``), the server is told: a failure, or
  the exception; never ``lifespan.startup.complete``, never nothing.
- L3: what startup wrote into ``scope["state"]`` (the app, and layers that
  run their own startup) is in the request's ``scope["state"]``, as written;
  and when the server was told the startup completed, the model app's own
  state is there (its startup ran).
- L4: an app that does not support lifespan (it returns or raises on the
  lifespan scope before it receives anything) is not broken by a layer: the
  server is not told ``lifespan.startup.failed`` and is not left waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._record import Event

_ENDS = ("raise", "return", "cancelled")


@dataclass
class _Boundary:
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    end: Event | None = None


@dataclass
class _Session:
    names: list[str]
    boundaries: list[_Boundary]
    served: bool
    completed: bool
    gave_up: bool

    @property
    def app(self) -> _Boundary:
        return self.boundaries[-1]

    @property
    def server(self) -> _Boundary:
        return self.boundaries[0]

    def unsupported(self, b: _Boundary) -> bool:
        """The app inside ``b`` ended on the lifespan scope before it received
        or sent anything."""
        return (
            b.end is not None
            and b.end.kind != "cancelled"
            and not b.sent
            and not b.received
        )


def _session(f: Facts) -> _Session | None:
    outcome = f.outcome
    record, server = outcome.recorder.lifespan, outcome.lifespan
    if record is None or server is None:
        return None
    names = outcome.recorder.boundaries
    boundaries = [_Boundary() for _ in names]
    for e in record.events:
        if server.gave_up is not None and e.tick > server.gave_up:
            break
        b = boundaries[e.where]
        if e.kind == "send":
            b.sent.append(e.message or {})
        elif e.kind == "receive":
            b.received.append(e.message or {})
        elif e.kind in _ENDS and b.end is None:
            b.end = e
    return _Session(
        names, boundaries, outcome.served, server.completed, server.gave_up is not None
    )


def _kind(m: dict[str, Any]) -> str:
    return str(m.get("type"))


def _shown(m: dict[str, Any]) -> str:
    """A message for people: long values (a traceback) cut short."""
    return repr(
        {k: v if len(repr(v)) <= 60 else f"{str(v)[:40]}..." for k, v in m.items()}
    )


def _compare(
    layer: str, outer: list[dict[str, Any]], inner: list[dict[str, Any]], up: bool
) -> Violation | None:
    """The first difference between what crossed the two sides of a layer."""
    source, dest = (inner, outer) if up else (outer, inner)
    who, to = (
        ("the app's side", "the server") if up else ("the server", "the app's side")
    )
    for n, (a, b) in enumerate(zip(source, dest, strict=False)):
        if a != b:
            return Violation(
                "L1",
                f"{layer} passed {who}'s message #{n + 1} {_shown(a)} on to {to} "
                f"as {_shown(b)}",
                "changed",
            )
    if len(source) > len(dest):
        m = source[len(dest)]
        return Violation(
            "L1",
            f"{layer} never passed {who}'s message #{len(dest) + 1} {_kind(m)} "
            f"on to {to}",
            "lost",
        )
    if len(dest) > len(source):
        m = dest[len(source)]
        return Violation(
            "L1",
            f"{layer} sent {to} {_kind(m)} (message #{len(source) + 1}), which "
            f"{who} never sent",
            "invented",
        )
    return None


def lifespan_messages(f: Facts) -> list[Violation]:
    """L1: every layer passes the lifespan messages through unchanged."""
    s = _session(f)
    if s is None:
        return []
    out = []
    for i in range(len(s.boundaries) - 1):
        outer, inner = s.boundaries[i], s.boundaries[i + 1]
        answers_for_app = s.unsupported(inner) or s.unsupported(s.app)
        for up in (True, False):
            found = _compare(
                s.names[i],
                outer.sent if up else outer.received,
                inner.sent if up else inner.received,
                up,
            )
            # Down, a message the app did not get is not lost: it may never
            # have asked (receive() is a pull).
            excused = (
                found is not None and found.tag == "invented" and answers_for_app
            ) or (not up and found is not None and found.tag == "lost")
            if found is not None and not excused:
                out.append(found)
                break
    return out


def _startup_failure(b: _Boundary) -> str | None:
    """How the app inside ``b`` failed its startup, or None."""
    for m in b.sent:
        if _kind(m) == "lifespan.startup.failed":
            return (
                f"reported lifespan.startup.failed ({str(m.get('message', ''))[:80]!r})"
            )
        if _kind(m) == "lifespan.startup.complete":
            return None
    if b.received and b.end is not None and b.end.kind == "raise":
        return f"raised {b.end.detail}"
    return None


def failed_startup(f: Facts) -> list[Violation]:
    """L2: a failing startup is reported as failed to the server."""
    s = _session(f)
    if s is None:
        return []
    failure = _startup_failure(s.app)
    if failure is None:
        return []
    told = [_kind(m) for m in s.server.sent]
    if "lifespan.startup.complete" in told:
        return [
            Violation(
                "L2",
                f"the app's startup {failure}, and the server was told "
                "lifespan.startup.complete",
                "complete",
            )
        ]
    raised = s.server.end is not None and s.server.end.kind == "raise"
    if "lifespan.startup.failed" not in told and not raised:
        return [
            Violation(
                "L2",
                f"the app's startup {failure}, and the server was told nothing "
                "of it (no lifespan.startup.failed, no exception)",
                "hidden",
            )
        ]
    return []


def state_reaches(f: Facts) -> list[Violation]:
    """L3: the startup's state reaches the request."""
    s = _session(f)
    record = f.outcome.recorder.lifespan
    if s is None or record is None or record.seen is None or not s.completed:
        return []
    expected = dict(record.written)
    writers = dict(record.writers)
    model = f.case.lifespan
    if model is not None and model.app != "unsupported" and model.startup == "complete":
        for key in model.state:
            expected.setdefault(key, f"{key} of the app")
            writers.setdefault(key, "the app (its startup never ran)")
    out = []
    for key, value in expected.items():
        if key not in record.seen:
            out.append(
                Violation(
                    "L3",
                    f"startup wrote state[{key!r}] ({writers[key]}), and the "
                    "request's scope['state'] has no such key",
                    "lost",
                )
            )
        elif record.seen[key] != value:
            out.append(
                Violation(
                    "L3",
                    f"startup wrote state[{key!r}] = {value!r} ({writers[key]}), and "
                    f"the request's scope['state'] has {record.seen[key]!r}",
                    "changed",
                )
            )
    return out[:1]


def unsupported_app(f: Facts) -> list[Violation]:
    """L4: an app that does not support lifespan is not broken by a layer."""
    s = _session(f)
    if s is None or not s.unsupported(s.app) or len(s.boundaries) < 2:
        return []
    how = (
        "raised" if s.app.end is not None and s.app.end.kind == "raise" else "returned"
    )
    if "lifespan.startup.failed" in [_kind(m) for m in s.server.sent]:
        return [
            Violation(
                "L4",
                f"the app {how} on the lifespan scope (it does not support "
                "lifespan), and the server was told lifespan.startup.failed, so it "
                "would not start",
                "failed",
            )
        ]
    if s.gave_up:
        return [
            Violation(
                "L4",
                f"the app {how} on the lifespan scope (it does not support "
                "lifespan), and the server waited for startup until it gave up",
                "hang",
            )
        ]
    return []
