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

import asyncio
from typing import Any

import anyio

from asgifuzz._driver.lifespan import Lifespan
from asgifuzz._driver.outcome import Outcome, group_members
from asgifuzz._driver.server import LIMIT, FakeServer, make_scope
from asgifuzz._types import ASGIApp
from asgifuzz.models import Case, build
from asgifuzz.models._record import Recorder

#: Virtual seconds the server waits for the startup's answer (hypercorn: 60).
STARTUP_TIMEOUT = 10.0
#: Virtual seconds the server waits for the shutdown's answer.
SHUTDOWN_TIMEOUT = 10.0


async def drive_session(
    case: Case, rec: Recorder, outcome: Outcome, backend: str, app: ASGIApp | None
) -> None:
    """Run one lifespan session (see the module's docstring)."""
    if backend == "asyncio":
        rec.clock = asyncio.get_running_loop().time
    else:
        import trio  # only on trio runs

        rec.clock = trio.lowlevel.current_clock().current_time
    app = build(case, rec) if app is None else app
    server = FakeServer(case, rec)
    scope = make_scope(case)
    lifespan = Lifespan(rec)
    outcome.lifespan, outcome.served = lifespan, False
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
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
            tg.cancel_scope.cancel()
    outcome.hung = limit.cancel_called and not outcome.returned
    outcome.app_cancelled = server.app_scope.cancel_called
    outcome.timed_out = server.timed_out
    outcome.response = server.response
    if backend == "asyncio":
        current = asyncio.current_task()
        outcome.pending_tasks = [
            repr(t) for t in asyncio.all_tasks() if t is not current and not t.done()
        ]


async def _serve(
    app: ASGIApp,
    scope: dict[str, Any],
    server: FakeServer,
    outcome: Outcome,
    rec: Recorder,
    tg: Any,
) -> None:
    """The request, as `asgifuzz._driver.runner` serves one."""
    outcome.served = True
    tg.start_soon(server.client_timeline)
    if server.profile.receive_checkpoints:
        tg.start_soon(server.body_arrives)
    with server.app_scope:
        try:
            await app(scope, server.receive, server.send)
        except (KeyboardInterrupt, SystemExit, anyio.get_cancelled_exc_class()):
            raise
        except BaseException as exc:
            rec.log_raise(0, exc)
            if _only_cancellations(exc):
                raise
            outcome.escaped = exc
        else:
            rec.log(0, "return")
        outcome.returned = True


def _only_cancellations(exc: BaseException) -> bool:
    members = group_members(exc)
    if not members:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    return all(_only_cancellations(m) for m in members)
