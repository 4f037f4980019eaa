"""One WebSocket run: the app against `FakeWsServer`, in virtual time.

`asgifuzz._driver.runner.run` calls `drive_websocket` for a case whose scope is
``websocket``, inside the same event loops, clocks and collectors as HTTP runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import anyio

from asgifuzz._driver.outcome import Outcome, group_members
from asgifuzz._driver.server import LIMIT
from asgifuzz._driver.ws_server import ClientView, FakeWsServer, ws_scope
from asgifuzz._types import ASGIApp
from asgifuzz.models import Case, build
from asgifuzz.models._record import Recorder


@dataclass
class WsOutcome(Outcome):
    """The outcome of a WebSocket run: an `Outcome` and the client's view."""

    view: ClientView = field(default_factory=ClientView)

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary of the run (no transcript)."""
        v = self.view
        summary = super().summary()
        for key in ("status", "response_complete", "body"):
            del summary[key]
        return {
            **summary,
            "handshake": v.handshake,
            "status": v.status,
            "received": [repr(x) for x in v.received],
            "server_close": v.server_close,
            "client_left": v.left,
        }


def _cancelled_only(exc: BaseException) -> bool:
    members = group_members(exc)
    if not members:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    return all(_cancelled_only(m) for m in members)


async def drive_websocket(
    case: Case, rec: Recorder, outcome: WsOutcome, backend: str, app: ASGIApp | None
) -> None:
    """Play ``case``'s session against its app (built, or ``app``)."""
    if app is None:
        app = build(case, rec)
    else:
        rec.boundaries[:] = ["app"]
    server = FakeWsServer(case, rec)
    scope = ws_scope(case)
    with anyio.move_on_after(LIMIT) as limit:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.client)
            try:
                await app(scope, server.receive, server.send)
            except (KeyboardInterrupt, SystemExit, anyio.get_cancelled_exc_class()):
                raise
            except BaseException as exc:
                rec.log_raise(0, exc)
                if _cancelled_only(exc):
                    raise
                outcome.escaped = exc
            else:
                rec.log(0, "return")
            outcome.returned = True
            server.app_ended(raised=outcome.escaped is not None)
            tg.cancel_scope.cancel()
    outcome.hung = limit.cancel_called and not outcome.returned
    outcome.view = server.view
    if backend == "asyncio":
        current = asyncio.current_task()
        outcome.pending_tasks = [
            repr(t) for t in asyncio.all_tasks() if t is not current and not t.done()
        ]
