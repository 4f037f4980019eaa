"""WebSocket events carry the run's virtual time, as HTTP events do, the same
on both backends and from one replay to the next."""

from __future__ import annotations

import pytest

from asgifuzz._driver.runner import run
from asgifuzz._driver.timeline import timeline
from asgifuzz._driver.ws_server import STEP_PATIENCE
from asgifuzz._types import BACKENDS
from asgifuzz.models import Case, Server
from asgifuzz.models._websocket import Session, Step, WsEndpoint

#: The endpoint never sends, so the second frame (sent once the client has seen
#: one of its messages) waits out the client's patience, and so does the close.
WAITING = Case(
    scope="websocket",
    server=Server(name="uvicorn"),
    websocket=Session(
        endpoint=WsEndpoint("read_all"),
        steps=(Step("text", "a"), Step("text", "b", after=1), Step("close", after=2)),
    ),
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_websocket_events_carry_the_virtual_time(backend: str) -> None:
    events = run(WAITING, backend).recorder.events
    times = [e.time for e in events]
    assert times == sorted(times)
    frames = [
        e.time
        for e in events
        if e.where == 0 and e.kind == "receive" and e.message
        if e.message.get("type") == "websocket.receive"
    ]
    assert frames[0] == 0.0
    assert frames[1] == pytest.approx(STEP_PATIENCE)
    assert times[-1] >= 2 * STEP_PATIENCE


def test_the_trace_is_the_same_on_every_replay_and_backend() -> None:
    def trace(backend: str) -> str:
        # The first and the last line name the backend; the events between
        # them must not differ.
        return "\n".join(timeline(run(WAITING, backend)).splitlines()[1:-1])

    first = trace("asyncio")
    assert "t=1 " in first
    assert trace("asyncio") == first == trace("trio")
