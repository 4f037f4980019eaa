"""The timeline and the Mermaid diagram of websocket and lifespan runs show
each frame with its payload, each close with its code and reason, and each
lifespan message with a failure's message."""

from __future__ import annotations

from asgifuzz._driver.runner import run
from asgifuzz._driver.timeline import mermaid, timeline
from asgifuzz.models import Case, Layer, Lifespan, Stack
from asgifuzz.models._websocket import Session, Step, WsEndpoint


def test_websocket_frames_and_closes_show_in_both() -> None:
    steps = (
        Step("text", "hi; #1: x", after=0),
        Step("bytes", b"\x00" * 3, after=1),
        Step("close", code=4000, reason="bye", after=2),
    )
    session = Session(endpoint=WsEndpoint("echo"), steps=steps)
    outcome = run(
        Case(
            scope="websocket",
            websocket=Session(
                endpoint=WsEndpoint("broadcast", count=1, code=4001, reason="done")
            ),
        )
    )
    text = timeline(outcome)
    assert "endpoint -> ExceptionMiddleware: websocket.send text='message 0'" in text
    assert "websocket.close code=4001 reason='done'" in text
    diagram = mermaid(outcome)
    assert "websocket.send 'message 0'" in diagram
    assert "websocket.close 4001 'done'" in diagram
    echo = mermaid(run(Case(scope="websocket", websocket=session)))
    assert "websocket.receive 'hi,  1  x'" in echo  # no Mermaid syntax in a label
    assert "websocket.receive 3B" in echo
    assert "websocket.disconnect 4000 'bye'" in echo


def test_a_lifespan_failure_shows_its_message() -> None:
    case = Case(
        stack=Stack((Layer("lifespan.wrap"),)),
        lifespan=Lifespan(app="raw", startup="fail", message="no database"),
    )
    outcome = run(case)
    assert "lifespan.startup.failed message='no database'" in timeline(outcome)
    assert "lifespan.startup.failed no database" in mermaid(outcome)
