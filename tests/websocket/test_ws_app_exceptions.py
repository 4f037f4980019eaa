"""W4 on a user's app: an exception is the disconnect's doing only once the
client's leaving reached the app (it was given ``websocket.disconnect``, or
sent once the client was gone), not because the client happened to leave
before the app got to the frame it raised on (FastAPI 0.165's docs loop and a
bytes frame: ``receive_text()`` raises ``KeyError: 'text'``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from asgifuzz._oracles.verdict import judge
from asgifuzz._targets.specs import allow_app, app_from_object, scoped
from asgifuzz.models import Case
from asgifuzz.models._websocket import Handshake, Session, Step


async def _index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _text_loop(websocket: WebSocket) -> None:
    """The docs' loop: a bytes frame makes receive_text() raise KeyError."""
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


async def _reads_text_of_everything(websocket: WebSocket) -> None:
    """Reads message["text"] of the disconnect too: a bug the disconnect shows."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        text = message["text"]
        await websocket.send_text(text)


@pytest.fixture(autouse=True)
def _apps() -> Iterator[None]:
    with scoped(({}, {})):
        for name, endpoint in (
            ("loop", _text_loop),
            ("reads", _reads_text_of_everything),
        ):
            app = Starlette(
                routes=[Route("/", _index), WebSocketRoute("/ws", endpoint)]
            )
            allow_app(app_from_object(app, name=name))
        yield


def _case(app: str, *steps: Step) -> Case:
    return Case(
        app=app,
        scope="websocket",
        websocket=Session(handshake=Handshake(path="/ws"), steps=steps),
    )


def _keys(case: Case) -> set[str]:
    return {v.key for vs in judge(case).violations.values() for v in vs}


@pytest.mark.parametrize("close_after", [0, 1])
def test_a_frame_the_app_raises_on_is_its_own_however_soon_the_client_leaves(
    close_after: int,
) -> None:
    # The same frame; the client closes at once (0), or after waiting for an
    # answer (1). Either way the KeyError is the app's own, not the disconnect's.
    case = _case("loop", Step("bytes", b"x", after=0), Step("close", after=close_after))
    assert not [k for k in _keys(case) if k.startswith("W4")]


def test_an_app_that_raises_on_the_disconnect_is_found() -> None:
    case = _case("reads", Step("text", "hi", after=0), Step("close", after=1))
    assert "W4:KeyError" in _keys(case)
