"""The websocket side of the driver: the server profiles, the client's script,
replay, and layers that pass websocket scopes through."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import WS_RESPONSES
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from asgifuzz._driver.runner import run
from asgifuzz._driver.server import ClientDisconnected, UnexpectedMessageError
from asgifuzz._driver.timeline import timeline
from asgifuzz._driver.ws_drive import WsOutcome
from asgifuzz._driver.ws_server import WS_PROFILES, Disconnected, LocalProtocolError
from asgifuzz._oracles.verdict import judge
from asgifuzz._types import BACKENDS
from asgifuzz.models import Case, Layer, Server, Stack
from asgifuzz.models._websocket import (
    DENIAL_BODY,
    DENIAL_STATUS,
    WS_SERVERS,
    Handshake,
    Session,
    Step,
    WsEndpoint,
)


def ws_case(
    kind: str = "echo",
    steps: tuple[Step, ...] = (),
    server: str = "uvicorn",
    layers: tuple[str, ...] = (),
    **endpoint: Any,
) -> Case:
    return Case(
        scope="websocket",
        server=Server(name=server),
        stack=Stack(layers=tuple(Layer(k) for k in layers)),
        websocket=Session(
            handshake=Handshake(subprotocols=("chat",)),
            endpoint=WsEndpoint(kind, **endpoint),
            steps=steps,
        ),
    )


def ws_run(case: Case, backend: str = "asyncio", app: Any = None) -> WsOutcome:
    outcome = run(case, backend, app=app)
    assert isinstance(outcome, WsOutcome)
    return outcome


FRAMES = (Step("text", "a"), Step("bytes", b"\x00", after=1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("server", WS_SERVERS)
def test_an_echo_session_through_every_ws_layer(backend: str, server: str) -> None:
    layers = ("ws.passthrough", "ws.rewrite", "ws.read_first", "bhm.passthrough")
    steps = (*FRAMES, Step("close", code=4001, reason="bye", after=2))
    case = ws_case("echo", steps, server, layers, subprotocol="chat")
    o = ws_run(case, backend)
    assert o.returned
    assert o.escaped is None
    assert (o.view.handshake, o.view.subprotocol) == ("open", "chat")
    assert (b"x-ws-rewritten", b"rewritten") in o.view.accept_headers
    assert o.view.received == ["a", b"\x00"] == o.view.sent
    assert o.view.left == (4001, "bye")
    assert "websocket.receive text='a'" in timeline(o)
    assert not judge(case).failed


def _messages(o: WsOutcome, kind: str) -> list[Any]:
    return [e.message for e in o.recorder.events if e.where == 0 and e.kind == kind]


async def _reads_after_disconnect(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    for _ in range(3):
        await receive()


@pytest.mark.parametrize(
    ("server", "repeats", "code", "again"),
    [
        ("uvicorn", 2, 4001, 1005),  # the close frame, then the connection's loss
        ("strict", 3, 4001, 4001),
        ("granian", 3, 4001, 1005),
        ("hypercorn", 1, 1006, None),
        ("daphne", 1, 4001, None),
    ],
)
def test_whether_the_disconnect_repeats_and_keeps_the_clients_code(
    server: str, repeats: int, code: int, again: int | None
) -> None:
    steps = (Step("close", code=4001, reason="bye"),)
    o = ws_run(ws_case(steps=steps, server=server), app=_reads_after_disconnect)
    gone = [m for m in _messages(o, "receive") if m["type"] == "websocket.disconnect"]
    assert len(gone) == repeats
    assert gone[0]["code"] == code
    assert ("reason" in gone[0]) is WS_PROFILES[server].client_reason
    assert [m["code"] for m in gone[1:2]] == ([again] if again else [])
    assert o.hung is (repeats < 3)  # receive() then blocks for ever


@pytest.mark.parametrize(("server", "repeats"), [("uvicorn", 1), ("granian", 3)])
def test_after_a_drop(server: str, repeats: int) -> None:
    steps = (Step("drop"),)
    o = ws_run(ws_case(steps=steps, server=server), app=_reads_after_disconnect)
    gone = [m for m in _messages(o, "receive") if m["type"] == "websocket.disconnect"]
    assert [m["code"] for m in gone] == [1005] * repeats


async def _sends_after_close(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 4000, "reason": "x"})
    msg = await receive()
    assert msg["type"] == "websocket.disconnect"
    await send({"type": "websocket.send", "text": "late"})


@pytest.mark.parametrize(
    ("server", "error", "code", "reason"),
    [
        ("uvicorn", RuntimeError, 4000, "x"),
        ("hypercorn", UnexpectedMessageError, 1000, None),
        ("daphne", Disconnected, 4000, None),
        ("granian", None, 1005, None),
        ("strict", RuntimeError, 4000, "x"),
    ],
)
def test_send_after_the_apps_close(
    server: str, error: type | None, code: int, reason: str | None
) -> None:
    o = ws_run(ws_case(server=server), app=_sends_after_close)
    assert (o.escaped is None) if error is None else isinstance(o.escaped, error)
    # daphne drops the app's close reason.
    assert o.view.server_close == (4000, "" if server == "daphne" else "x")
    assert _messages(o, "receive")[1] == {
        "type": "websocket.disconnect",
        "code": code,
    } | ({"reason": reason} if reason is not None else {})


async def _sends_after_client_left(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass
    await send({"type": "websocket.send", "text": "late"})


@pytest.mark.parametrize(
    ("server", "raises"),
    [
        ("uvicorn", True),
        ("hypercorn", False),
        ("daphne", False),
        ("granian", False),
        ("strict", True),
    ],
)
def test_send_once_the_client_is_gone(server: str, raises: bool) -> None:
    steps = (Step("text", "a"), Step("drop"))
    o = ws_run(ws_case(steps=steps, server=server), app=_sends_after_client_left)
    assert isinstance(o.escaped, ClientDisconnected) is raises
    assert o.view.left == (1006, "")
    assert o.view.received == []


@pytest.mark.parametrize(
    ("kind", "handshake", "status"),
    [
        ("reject", "rejected", 403),
        # Starlette < 0.37 cannot deny: the endpoint closes (a 403) instead.
        ("deny", "denied" if WS_RESPONSES else "rejected", DENIAL_STATUS),
        ("raise_before", "error", 500),
    ],
)
def test_a_refused_handshake(kind: str, handshake: str, status: int) -> None:
    o = ws_run(ws_case(kind, code=4003))
    assert (o.view.handshake, o.view.status) == (handshake, status)
    assert o.view.denial_body == (
        DENIAL_BODY if kind == "deny" and WS_RESPONSES else b""
    )
    assert o.returned


def test_the_auth_layer_closes_with_1008_before_the_endpoint() -> None:
    o = ws_run(ws_case(layers=("ws.auth",)))
    assert o.view.handshake == "rejected"
    assert {"type": "websocket.close", "code": 1008, "reason": "unauthorized"} in (
        _messages(o, "send")
    )
    assert not any(e.where == 2 for e in o.recorder.events)  # the endpoint: never


def test_a_client_that_leaves_during_the_handshake() -> None:
    o = ws_run(ws_case(steps=(Step("close", code=4000, after=-1),)))
    assert _messages(o, "receive")[1] == {"type": "websocket.disconnect", "code": 1006}
    assert isinstance(o.escaped, ClientDisconnected) or o.escaped is None


def test_a_subprotocol_the_client_did_not_offer() -> None:
    o = ws_run(ws_case(server="hypercorn", subprotocol="v9"))
    assert str(o.escaped) == "Invalid Subprotocol 'v9'"
    assert type(o.escaped) is Exception
    o = ws_run(ws_case(server="uvicorn", subprotocol="v9"))
    assert isinstance(o.escaped, LocalProtocolError)
    assert ws_run(ws_case(server="granian", subprotocol="v9")).view.subprotocol == "v9"


@pytest.mark.parametrize(
    ("server", "status"), [("uvicorn", 500), ("granian", 403), ("daphne", None)]
)
def test_an_app_that_returns_without_answering(server: str, status: int | None) -> None:
    async def returns(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    o = ws_run(ws_case(server=server), app=returns)
    assert o.view.status == status
    assert o.view.handshake == ("handshake" if status is None else "error")


def test_broadcast_close_and_raise_after() -> None:
    o = ws_run(ws_case("broadcast", count=2, code=4002, reason="end"))
    assert o.view.received == ["message 0", "message 1"]
    assert o.view.server_close == (4002, "end")
    for server in ("uvicorn", "hypercorn", "daphne", "granian"):
        o = ws_run(ws_case("raise_after", FRAMES, server=server))
        assert type(o.escaped).__name__ == "ModelError"
        # The server closes for the app: uvicorn just ends the connection
        # (1006), granian's close frame has no code (1005).
        code = {"uvicorn": 1006, "granian": 1005}.get(server, 1011)
        assert o.view.server_close == (code, "")


def test_an_idle_client_closes_and_read_all_returns() -> None:
    o = ws_run(ws_case("read_all", FRAMES))
    assert o.view.left == (1000, "done")
    assert o.returned


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_replays_identically(backend: str) -> None:
    steps = (*FRAMES, Step("text", "c", after=2), Step("drop", after=3))
    case = ws_case("echo", steps, "strict", ("ws.read_first", "asgi.passthrough"))

    def events(o: WsOutcome) -> list[Any]:
        return [(e.tick, e.time, e.where, e.kind, e.message) for e in o.recorder.events]

    first = events(ws_run(case, backend))
    assert first == events(ws_run(case, backend))
    other = "trio" if backend == "asyncio" else "asyncio"
    assert first == events(ws_run(case, other))


class Refuses(BaseHTTPMiddleware):
    """A `BaseHTTPMiddleware` whose dispatch would refuse every request."""

    async def dispatch(self, request: Any, call_next: Any) -> Any:
        raise AssertionError("dispatch is for http scopes only")


async def _echo(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


@pytest.mark.parametrize("backend", BACKENDS)
def test_base_http_middleware_passes_a_websocket_scope_through(backend: str) -> None:
    app = Starlette(
        routes=[WebSocketRoute("/ws", _echo)], middleware=[Middleware(Refuses)]
    )
    steps = (Step("text", "a"), Step("text", "b", after=1))
    o = ws_run(ws_case(steps=steps), backend, app=app)
    assert o.escaped is None
    assert o.view.received == ["a", "b"]


async def _feed(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(f"{ws.path_params['room']}: {text}")


def test_the_websocket_routes_of_an_app_are_found_and_opened() -> None:
    from hypothesis import given, settings
    from starlette.routing import Mount

    from asgifuzz._targets.routes import websocket_paths
    from asgifuzz._targets.specs import scoped
    from asgifuzz.strategies import cases

    inner = Starlette(routes=[WebSocketRoute("/rooms/{room}", _feed)])
    app = Starlette(routes=[WebSocketRoute("/ws", _echo), Mount("/chat", inner)])
    assert websocket_paths(Refuses(app)) == ["/ws", "/chat/rooms/0", "/chat/rooms/a"]
    with scoped(({}, {})):
        strategy = cases(app=app, scopes=["websocket"], routes=["GET /"])

        @settings(max_examples=10, database=None, deadline=None)
        @given(strategy)
        def opens(case: Case) -> None:
            assert case.app
            assert case.websocket.handshake.path.startswith(("/ws", "/chat/rooms/"))
            assert ws_run(case).view.handshake == "open"

        opens()


def test_an_app_without_websocket_routes_is_refused() -> None:
    from hypothesis.errors import InvalidArgument

    from asgifuzz._targets.specs import scoped
    from asgifuzz.strategies import websocket_cases

    with scoped(({}, {})), pytest.raises(InvalidArgument, match="no WebSocketRoute"):
        websocket_cases(app=Starlette(routes=[]))


def test_the_rate_benchmark_runs() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "ws_rate.py"
    spec = importlib.util.spec_from_file_location("ws_rate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.rate("websocket", 3) > 0
