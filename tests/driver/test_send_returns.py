"""The server records when each of its ``send()`` calls returns (after its
checkpoints), adding no event; a ``send()`` that raises has no entry."""

from __future__ import annotations

from asgifuzz._driver.runner import run
from asgifuzz.models import Case, Client, Endpoint, Layer, Server, Stack


def _server_sends(case: Case, backend: str) -> tuple[list[int], list[tuple[int, int]]]:
    o = run(case, backend)
    ticks = [e.tick for e in o.recorder.events if e.kind == "send" and e.where == 0]
    return ticks, o.recorder.send_returned


def test_each_send_returns_after_it_was_called(backend: str) -> None:
    case = Case(endpoint=Endpoint(kind="stream", chunks=2), server=Server())
    ticks, returned = _server_sends(case, backend)
    # start, two chunks, the final empty body: one return each, in order.
    assert len(ticks) == 4
    assert [n for _, n in returned] == [0, 1, 2, 3]
    assert all(t >= tick for (t, _), tick in zip(returned, ticks, strict=True))


def test_a_slow_send_returns_after_what_ran_meanwhile(backend: str) -> None:
    # Through a BaseHTTPMiddleware the endpoint runs in a task of its own: while
    # the server's send() checkpoints, the endpoint goes on (its next message
    # crosses its boundary before the server's send returns).
    case = Case(
        stack=Stack((Layer("bhm.passthrough"),)),
        endpoint=Endpoint(kind="stream", chunks=3),
        server=Server(send_checkpoints=2),
    )
    ticks, returned = _server_sends(case, backend)
    # Each send that returned did so in order; before 0.28 the middleware cancels
    # its task group once the response is sent, so the final slow send is
    # cancelled and has no entry (measured on 0.27.0).
    assert [n for _, n in returned] == list(range(len(returned)))
    assert len(returned) >= len(ticks) - 1
    assert any(t > tick for (t, _), tick in zip(returned, ticks, strict=False))


def test_recording_adds_no_event(backend: str) -> None:
    case = Case(server=Server(send_checkpoints=1))
    o = run(case, backend)
    assert [e.tick for e in o.recorder.events] == list(
        range(1, len(o.recorder.events) + 1)
    )
    assert o.recorder.last_tick == len(o.recorder.events)


def test_a_send_that_raises_has_no_return(backend: str) -> None:
    # The strict server (ASGI 2.4) raises from send() once the client is gone.
    case = Case(
        endpoint=Endpoint(kind="stream", chunks=2),
        client=Client(disconnect="response_start"),
        server=Server(name="strict"),
    )
    ticks, returned = _server_sends(case, backend)
    assert len(ticks) >= 2  # the start returned, the body after it raised
    assert [n for _, n in returned] == [0]
