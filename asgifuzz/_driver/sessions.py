"""The driver of a lifespan session (a case with ``Case.lifespan``).

The server runs the lifespan protocol through the case's stack: it sends
``lifespan.startup`` and waits (at most `STARTUP_TIMEOUT` virtual seconds, as
hypercorn's ``startup_timeout`` does); if it may serve (`Lifespan.serves`) it
sends the case's request, with a shallow copy of the startup's state, then
``lifespan.shutdown``, and waits for its answer (`SHUTDOWN_TIMEOUT`). Every
lifespan message at every boundary goes to ``Recorder.lifespan``; the request
is recorded as any other, so the HTTP invariants judge it too.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import TaskGroup

from asgifuzz._driver.lifespan import Lifespan
from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.scaffold import (
    app_under_test,
    call_app,
    use_virtual_clock,
    within_limit,
)
from asgifuzz._driver.server import FakeServer, make_scope
from asgifuzz._types import ASGIApp
from asgifuzz.models import Case
from asgifuzz.models._record import Recorder

#: Virtual seconds the server waits for the startup's answer (hypercorn: 60).
STARTUP_TIMEOUT = 10.0
#: Virtual seconds the server waits for the shutdown's answer.
SHUTDOWN_TIMEOUT = 10.0


async def drive_session(
    case: Case, rec: Recorder, outcome: Outcome, backend: str, app: ASGIApp | None
) -> None:
    """Run one lifespan session (see the module's docstring)."""
    use_virtual_clock(rec, backend)
    app = app_under_test(case, rec, app)
    server = FakeServer(case, rec)
    scope = make_scope(case)
    lifespan = Lifespan(rec)
    outcome.lifespan, outcome.served = lifespan, False

    async def session(tg: TaskGroup) -> None:
        tg.start_soon(lifespan.run, app)
        with anyio.move_on_after(STARTUP_TIMEOUT):
            await lifespan.started.wait()
        if not lifespan.started.is_set():
            lifespan.gave_up = rec.note(
                f"the server gave up on startup after {STARTUP_TIMEOUT:g}s"
            )
        elif not lifespan.serves:
            rec.note(f"the server stops: {lifespan.failed}")
        else:
            rec.note(
                lifespan.startup_note
                if lifespan.supported
                else ("lifespan unsupported: the server goes on without it")
            )
            scope["state"] = {**scope.get("state", {}), **lifespan.request_state()}
            await _serve(app, scope, server, outcome, rec, tg)
            if lifespan.supported:
                lifespan.stop.set()
                with anyio.move_on_after(SHUTDOWN_TIMEOUT):
                    await lifespan.done.wait()
                rec.note(f"lifespan shutdown: {lifespan.failed or 'over'}")

    await within_limit(outcome, backend, session)
    outcome.app_cancelled = server.app_scope.cancel_called
    outcome.timed_out = server.timed_out
    outcome.response = server.response


async def _serve(
    app: ASGIApp,
    scope: dict[str, Any],
    server: FakeServer,
    outcome: Outcome,
    rec: Recorder,
    tg: TaskGroup,
) -> None:
    """The request, as `asgifuzz._driver.runner` serves one."""
    outcome.served = True
    tg.start_soon(server.client_timeline)
    if server.profile.receive_checkpoints:
        tg.start_soon(server.body_arrives)
    with server.app_scope:
        await call_app(app, scope, server.receive, server.send, rec, outcome)
