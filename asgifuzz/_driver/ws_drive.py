"""One WebSocket run: the app against `FakeWsServer`, in virtual time.

`asgifuzz._driver.runner.run` calls `drive_websocket` for a case whose scope is
``websocket``, inside the same event loops, clocks and collectors as HTTP runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anyio.abc import TaskGroup

from asgifuzz._driver.outcome import Outcome
from asgifuzz._driver.scaffold import (
    app_under_test,
    call_app,
    use_virtual_clock,
    within_limit,
)
from asgifuzz._driver.ws_server import ClientView, FakeWsServer, ws_scope
from asgifuzz._types import ASGIApp
from asgifuzz.models import Case
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


async def drive_websocket(
    case: Case, rec: Recorder, outcome: WsOutcome, backend: str, app: ASGIApp | None
) -> None:
    """Play ``case``'s session against its app (built, or ``app``), its events
    stamped with the loop's virtual time, as HTTP runs' are."""
    use_virtual_clock(rec, backend)
    app = app_under_test(case, rec, app)
    server = FakeWsServer(case, rec)
    scope = ws_scope(case)

    async def session(tg: TaskGroup) -> None:
        tg.start_soon(server.client)
        await call_app(app, scope, server.receive, server.send, rec, outcome)
        server.app_ended(raised=outcome.escaped is not None)

    await within_limit(outcome, backend, session)
    outcome.view = server.view
