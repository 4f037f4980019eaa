"""Confirm a failure on real servers: serve the case's app, play its client.

For each server, `confirm` says **confirmed** (the client saw the failure in
``hits`` of ``tries`` tries), **not confirmed** (with what the client saw
instead) or **not confirmable** (the failure leaves no trace on the wire, or the
case needs a server behaviour no real server has: `judge.wire_reason`). A case
whose outcome depends on how its pieces meet in time on the wire (a body in
several chunks, a client that hangs up mid-way) is tried ``tries`` times;
the others once.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from asgifuzz._confirm.client import Seen, play
from asgifuzz._confirm.judge import (
    CONFIRMED,
    NOT_CONFIRMABLE,
    NOT_CONFIRMED,
    Judged,
    escaped,
    judge,
    logged_type,
    wire_reason,
)
from asgifuzz._confirm.process import running
from asgifuzz.models import Case, Stack
from asgifuzz.models._parts import PASSTHROUGH_KINDS

#: Wall-clock seconds the client waits for more of a response: past it, a hang.
BOUND = 2.0
#: Wall-clock seconds the server may take to log an exception once the client
#: is done (daphne logs what its apps raised when it polls them, once a second).
LOG_WAIT = 1.5


@dataclass
class Confirmation:
    """The verdict on one server: status, the tries that showed it, and why."""

    server: str
    status: str
    detail: str
    version: str = ""
    starlette: str = ""
    hits: int = 0
    tries: int = 0
    seen: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for people."""
        where = f"{self.server} {self.version}".strip()
        if self.starlette:
            where += f" (Starlette {self.starlette})"
        count = f" ({self.hits} of {self.tries} tries)" if self.tries > 1 else ""
        return f"{where}: {self.status}{count}: {self.detail}"


def timing_sensitive(case: Case) -> bool:
    """Whether the outcome may depend on how the request's pieces meet in time."""
    parts = [c for c in case.request.body if c]
    return len(parts) > 1 or case.client.disconnect != "never"


def without_passthrough(case: Case) -> Case:
    """The case without its pass-through layers (the reference of I8)."""
    kept = tuple(la for la in case.stack.layers if la.kind not in PASSTHROUGH_KINDS)
    return dataclasses.replace(case, stack=Stack(kept, case.stack.mode))


def _child_env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    if python != sys.executable:  # a release venv: its own asgifuzz and Starlette
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
    return env


@dataclass
class Served:
    """What one try gave: the client's view, the server's log (once it
    stopped), and the versions it ran."""

    seen: Seen
    log: str
    version: str
    starlette: str


def _serve_and_play(
    server: str, case: Case, python: str, bound: float, folder: Path, logs: str = ""
) -> Served:
    """Serve ``case`` in a fresh server process and play its client once (each
    try has its own process, so that its log is its own); for an exception
    type ``logs``, wait up to `LOG_WAIT` for the server to log it."""
    path = folder / f"case-{len(list(folder.iterdir()))}.json"
    path.write_text(case.to_json())
    env = _child_env(python)
    with running(server, ["--case", str(path)], python=python, env=env) as live:
        seen = play(case, live.port, bound)
        deadline = time.monotonic() + LOG_WAIT
        while logs and not escaped(live.log_text(), logs):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)  # a real server's log, on the wall clock
    return Served(seen, live.logged, live.version, live.starlette)


def confirm_on(
    server: str,
    case: Case,
    key: str,
    *,
    tries: int = 5,
    python: str = sys.executable,
    bound: float = BOUND,
) -> Confirmation:
    """Confirm ``key`` for ``case`` on the real ``server`` (see the module)."""
    reason = wire_reason(case, key)
    if reason:
        return Confirmation(server, NOT_CONFIRMABLE, reason)
    n = tries if timing_sensitive(case) else 1
    ref = without_passthrough(case) if key.startswith("I8") else None
    verdicts: list[Judged] = []
    seen: list[Seen] = []
    with tempfile.TemporaryDirectory(prefix="asgifuzz-confirm-") as folder:
        for _ in range(n):
            got = _serve_and_play(
                server, case, python, bound, Path(folder), logged_type(key)
            )
            plain = None
            if ref is not None:
                plain = _serve_and_play(server, ref, python, bound, Path(folder)).seen
            verdicts.append(judge(key, case, got.seen, plain, got.log))
            seen.append(got.seen)
    hits = [v for v in verdicts if v.status == CONFIRMED]
    first = (hits or verdicts)[0]
    return Confirmation(
        server,
        CONFIRMED if hits else NOT_CONFIRMED,
        first.detail,
        got.version,
        got.starlette,
        len(hits),
        n,
        [s.describe() for s in seen],
    )
