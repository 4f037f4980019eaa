"""The ``iterate`` endpoint (Starlette's documented ``async for`` over
``iter_text()``) is drawn among the others, and its client sends text only."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, find, given, settings

from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, Server
from asgifuzz.models._websocket import WS_ENDPOINT_KINDS, Session, Step, WsEndpoint
from asgifuzz.strategies import websocket_cases
from asgifuzz.strategies._ws import websocket_sessions


def test_websocket_cases_draw_an_iterate_endpoint_with_text_frames() -> None:
    assert "iterate" in WS_ENDPOINT_KINDS
    found = find(
        websocket_cases(),
        lambda c: (
            c.websocket is not None
            and c.websocket.endpoint.kind == "iterate"
            and any(s.kind == "text" for s in c.websocket.steps)
        ),
        # The first one found: shrinking it is not what is tested.
        settings=settings(database=None, max_examples=500, phases=[Phase.generate]),
    )
    assert found.websocket is not None


@settings(database=None, suppress_health_check=list(HealthCheck))
@given(websocket_sessions(kinds=["iterate", "echo"]))
def test_an_iterate_endpoints_client_sends_no_bytes(session: Session) -> None:
    if session.endpoint.kind == "iterate":
        assert all(step.kind != "bytes" for step in session.steps)


def test_a_bytes_frame_would_make_the_model_raise() -> None:
    # Why the strategy sends it none: iter_text reads message["text"].
    case = Case(
        scope="websocket",
        server=Server(name="hypercorn"),
        websocket=Session(endpoint=WsEndpoint("iterate"), steps=(Step("bytes", b"x"),)),
    )
    keys = {v.key for vs in judge(case).violations.values() for v in vs}
    assert keys == {"W4:KeyError"}
