"""The scaffolding every driver of one run shares (HTTP requests in
`asgifuzz._driver.runner`, lifespan sessions in `asgifuzz._driver.sessions`,
WebSocket sessions in `asgifuzz._driver.ws_drive`).

Each driver plays its own server; what they have in common is here: the
recorder's clock, the app under test, the run inside the virtual-time `LIMIT`
with one task group that is cancelled once the app is done, the call of the app
(what escaped it, or that it returned), and what the run left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from asgifuzz._driver.outcome import Outcome, group_members
from asgifuzz._driver.server import LIMIT
from asgifuzz._types import ASGIApp, Message
from asgifuzz.models import Case, build
from asgifuzz.models._record import Recorder


def use_virtual_clock(rec: Recorder, backend: str) -> None:
    """Stamp the recorder's events with the running loop's virtual time."""
    if backend == "asyncio":
        rec.clock = asyncio.get_running_loop().time
    else:
        import trio  # only on trio runs

        rec.clock = trio.lowlevel.current_clock().current_time


def app_under_test(case: Case, rec: Recorder, app: ASGIApp | None) -> ASGIApp:
    """The app built from ``case`` (recording every boundary), or ``app`` (then
    only the server's boundary is recorded)."""
    if app is None:
        return build(case, rec)
    rec.boundaries[:] = ["app"]
    return app


async def within_limit(
    outcome: Outcome, backend: str, serve: Callable[[TaskGroup], Awaitable[None]]
) -> None:
    """``serve(tg)`` inside the virtual-time `LIMIT`, in a task group whose
    other tasks (the client, the lifespan, the body's arrival) are cancelled once
    ``serve`` returns; then whether the run hung, and on asyncio the tasks it
    left running (trio has no orphan tasks by construction)."""
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
            await serve(tg)
            tg.cancel_scope.cancel()
    outcome.hung = limit.cancel_called and not outcome.returned
    if backend == "asyncio":
        current = asyncio.current_task()
        outcome.pending_tasks = [
            repr(t) for t in asyncio.all_tasks() if t is not current and not t.done()
        ]


async def call_app(
    app: ASGIApp,
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
    rec: Recorder,
    outcome: Outcome,
) -> None:
    """Call the app once: what escaped it goes to ``outcome.escaped`` (and the
    server's boundary), a return to the transcript; ``outcome.returned`` either
    way. A cancellation (ours) goes on up."""
    try:
        await app(scope, receive, send)
    except (KeyboardInterrupt, SystemExit, anyio.get_cancelled_exc_class()):
        raise
    except BaseException as exc:
        # BaseException: anyio 3's ExceptionGroup is not an Exception.
        rec.log_raise(0, exc)
        if only_cancellations(exc):
            # anyio 3 on trio wraps our own cancellation in its group, where
            # trio cannot strip it: the app did not return.
            raise
        outcome.escaped = exc
    else:
        rec.log(0, "return")
    outcome.returned = True


def only_cancellations(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation, or a group of nothing else."""
    members = group_members(exc)
    if not members:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    return all(only_cancellations(m) for m in members)
