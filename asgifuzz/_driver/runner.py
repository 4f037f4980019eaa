"""The driver: plays the ASGI server and the HTTP client for one case.

The app is called directly, ``await app(scope, receive, send)``, on asyncio (on
`VirtualTimeLoop`) or trio (on ``MockClock(autojump_threshold=0)``), inside a
virtual-time limit, so a hang costs well under a millisecond of wall time. The
server's and the client's parts are `asgifuzz._driver.server.FakeServer`.
"""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from asgifuzz._driver import collector
from asgifuzz._driver import determinism as _determinism
from asgifuzz._driver.lifespan import Lifespan
from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.scaffold import (
    app_under_test,
    call_app,
    use_virtual_clock,
    within_limit,
)
from asgifuzz._driver.server import FakeServer, make_scope
from asgifuzz._driver.sessions import drive_session
from asgifuzz._driver.vtime import blocking_threads, run_virtual
from asgifuzz._driver.ws_drive import WsOutcome, drive_websocket
from asgifuzz._errors import UsageError
from asgifuzz._targets.specs import app_target
from asgifuzz._types import BACKENDS, ASGIApp
from asgifuzz.models import Case
from asgifuzz.models._record import Recorder


async def _drive(
    case: Case, rec: Recorder, outcome: Outcome, backend: str, app: ASGIApp | None
) -> None:
    use_virtual_clock(rec, backend)
    app = app_under_test(case, rec, app)
    server = FakeServer(case, rec)
    scope = make_scope(case)
    lifespan = _lifespan_of(case)

    async def serve(tg: TaskGroup) -> None:
        if lifespan is not None:
            await _start_lifespan(lifespan, app, tg, scope, rec)
        tg.start_soon(server.client_timeline)
        if case.server.receive_checkpoints:
            tg.start_soon(server.body_arrives)
        with server.app_scope:
            await call_app(app, scope, server.receive, server.send, rec, outcome)
        if lifespan is not None:
            await _stop_lifespan(lifespan, rec)

    await within_limit(outcome, backend, serve)
    if lifespan is not None and lifespan.failed is not None and not outcome.returned:
        raise UsageError(
            f"the app's lifespan startup failed ({lifespan.failed}); fix the app's "
            "startup, or fuzz without lifespan (--no-lifespan)"
        )
    outcome.app_cancelled = server.app_scope.cancel_called
    outcome.timed_out = server.timed_out
    outcome.response = server.response


def _lifespan_of(case: Case) -> Lifespan | None:
    if not case.app:
        return None
    return Lifespan() if app_target(case.app).lifespan else None


async def _start_lifespan(
    lifespan: Lifespan,
    app: ASGIApp,
    tg: TaskGroup,
    scope: dict[str, Any],
    rec: Recorder,
) -> None:
    """Lifespan startup before the request, in the run's own event loop."""
    tg.start_soon(lifespan.run, app)
    await lifespan.started.wait()
    if lifespan.failed is not None:
        tg.cancel_scope.cancel()  # no request; _drive raises the error
        await anyio.lowlevel.checkpoint()
    if lifespan.supported:
        rec.note(lifespan.startup_note)
        # The app's startup state, over what the layers declared they need.
        scope["state"] = {**scope.get("state", {}), **lifespan.request_state()}


async def _stop_lifespan(lifespan: Lifespan, rec: Recorder) -> None:
    if lifespan.supported:
        lifespan.stop.set()
        await lifespan.done.wait()
        rec.note(f"lifespan shutdown: {lifespan.failed or 'complete'}")


def _run_backend(backend: str, main: Callable[[], Any], seed: int) -> None:
    if backend == "asyncio":
        run_virtual(main())
    else:
        import trio.testing

        _determinism.seed_trio(seed)
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def run(case: Case, backend: str = "asyncio", *, app: ASGIApp | None = None) -> Outcome:
    """Run ``case`` once on ``backend`` (``"asyncio"`` or ``"trio"``).

    ``app`` replaces the app built from the case's stack and endpoint (then
    only the server's boundary is recorded).

    Returns the `Outcome`: every message at every boundary with logical and
    virtual timestamps, what escaped the app, what was read, when background
    work ran, and the warnings raised (collected after a garbage collection).
    """
    if backend not in BACKENDS:
        raise UsageError(f"backend={backend!r} is not one of {list(BACKENDS)}")
    rec = Recorder()
    websocket = case.scope == "websocket"
    outcome = (WsOutcome if websocket else Outcome)(
        case=case, backend=backend, recorder=rec
    )
    _determinism.install()
    main: Callable[..., Any] = (
        drive_websocket
        if websocket
        else _drive
        if case.lifespan is None
        else drive_session
    )
    unraisable: list[str] = []
    old_hook = sys.unraisablehook

    def hook(info: Any) -> None:
        unraisable.append(
            f"{type(info.exc_value).__name__}: {info.exc_value} in {info.object!r}"
        )

    # The collector is paused with generation 0 empty, so that the generation-0
    # collection at the end finds every cycle the run left behind (see
    # asgifuzz._driver.collector).
    gc_was_enabled = gc.isenabled()
    collector.before_run()
    gc.disable()
    with warnings.catch_warnings(record=True) as caught, blocking_threads():
        warnings.simplefilter("always")
        sys.unraisablehook = hook
        try:
            _run_backend(
                backend, lambda: main(case, rec, outcome, backend, app), case.seed
            )
            outcome.freeze_exceptions()
            collector.collect_run()
        finally:
            sys.unraisablehook = old_hook
            if gc_was_enabled:
                gc.enable()
    outcome.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    outcome.unraisable = unraisable
    return outcome
