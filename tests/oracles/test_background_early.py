"""I5 "early": a background task starts only after the server's ``send()`` of the
final body message has returned, not when its owner called its own ``send``."""

from __future__ import annotations

from typing import Any

import anyio
from test_oracles import BODY, START, keys, outcome

from asgifuzz._corpus.entries import parse_version, starlette_version
from asgifuzz._driver.runner import run
from asgifuzz._oracles.registry import judge_outcome
from asgifuzz._targets.specs import MiddlewareTarget, allow_middleware
from asgifuzz._types import ASGIApp, Message, Receive, Scope, Send
from asgifuzz.models import Case, Endpoint, Layer, Server, Stack
from asgifuzz.models._record import Background

#: The endpoint (boundary 1) sends events 1 and 2, the server gets them as 3 and 4.
EVENTS: list[Any] = [
    (1, "send", START),
    (1, "send", BODY),
    (0, "send", START),
    (0, "send", BODY),
    (-1, "note", None),  # 5
    (-1, "note", None),  # 6
]


def early(started: int, returns: list[tuple[int, int]]) -> list[str]:
    record = Background("endpoint", runs=1, started=started, finished=started + 1)
    o = outcome(events=EVENTS, background=[record], response_complete=4)
    o.recorder.send_returned = returns
    return [k for k in keys(o) if k == "I5:early"]


def test_a_task_that_starts_while_the_final_send_is_in_flight_is_early() -> None:
    # The server's send() of the final body (event 4) returned after event 6;
    # the task started at event 5, after its owner's send (event 2).
    assert early(5, [(3, 0), (6, 1)]) == ["I5:early"]


def test_a_task_that_starts_after_the_final_send_returned_is_not() -> None:
    assert early(5, [(3, 0), (4, 1)]) == []
    assert early(6, [(3, 0), (5, 1)]) == []


def test_a_final_send_that_never_returned_leaves_the_owner_rule() -> None:
    # It raised (a strict server after a disconnect) or was cancelled: only the
    # owner's own send is compared.
    assert early(5, [(3, 0)]) == []
    assert early(1, [(3, 0)]) == ["I5:early"]


def test_a_client_that_left_is_owed_no_order() -> None:
    # Policy: a disconnect before the response was complete ends its
    # obligations (Starlette's StreamingResponse runs its task once it sees
    # the disconnect, while a BaseHTTPMiddleware above still sends to nobody).
    record = Background("endpoint", runs=1, started=5, finished=6)
    o = outcome(events=EVENTS, background=[record], disconnected=1)
    o.recorder.send_returned = [(3, 0), (6, 1)]
    assert [k for k in keys(o) if k.startswith("I5")] == []


def test_the_message_names_the_send_and_its_return() -> None:
    record = Background("endpoint", runs=1, started=5, finished=6)
    o = outcome(events=EVENTS, background=[record], response_complete=4)
    o.recorder.send_returned = [(3, 0), (6, 1)]
    (v,) = [v for v in judge_outcome(o) if v.key == "I5:early"]
    assert v.message == (
        "the background task of endpoint started (event 5) before the server's "
        "send() of the final body message (event 4) had returned (after event 6)"
    )


class ForwardsFinalBodyLater:
    """A layer that hands the final body message on from a task of its own, so
    that the ``send`` below it returns before the server has the message (what
    `BaseHTTPMiddleware` did before Starlette PR #3476, over a memory stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def forward(message: Message) -> None:
            await send(message)

        async with anyio.create_task_group() as tg:

            async def later(message: Message) -> None:
                if message["type"] == "http.response.body" and not message.get(
                    "more_body", False
                ):
                    tg.start_soon(forward, message)
                else:
                    await send(message)

            await self.app(scope, receive, later)


def _case(layer: str, send_checkpoints: int) -> Case:
    return Case(
        stack=Stack((Layer(layer),)),
        endpoint=Endpoint(background="checkpoint"),
        server=Server(send_checkpoints=send_checkpoints),
    )


def test_it_fires_on_a_real_run_and_the_owner_rule_alone_would_not(
    backend: str,
) -> None:
    allow_middleware(MiddlewareTarget("ForwardsFinalBodyLater", ForwardsFinalBodyLater))
    o = run(_case("user.ForwardsFinalBodyLater", 2), backend)
    found = [v for v in judge_outcome(o) if v.invariant == "I5"]
    assert [v.key for v in found] == ["I5:early"]
    assert "before the server's send() of the final body message" in found[0].message
    # The owner's own send came before the task started: the old rule was quiet.
    (bg,) = o.recorder.background
    endpoint_sends = [e for e in o.recorder.events if e.kind == "send" and e.where == 3]
    assert bg.started is not None
    assert endpoint_sends[-1].tick < bg.started


#: Before 1.7.0 a BaseHTTPMiddleware started the endpoint's background task before
#: the server's send of the final body returned (Kludex/starlette#3458, fixed by
#: PR #3476 in 1.7.0; measured here on 0.27.0 and 1.6.0, with a send that returns
#: at once).
_BHM_EARLY = parse_version(starlette_version()) < parse_version("1.7.0")


def test_a_layer_that_forwards_in_line_keeps_the_order(backend: str) -> None:
    for kind in ("asgi.passthrough", "bhm.passthrough", "starlette.gzip"):
        for checkpoints in (0, 2):
            o = run(_case(kind, checkpoints), backend)
            known = _BHM_EARLY and (kind, checkpoints) == ("bhm.passthrough", 0)
            expected = ["I5:early"] if known else []
            found = [v.key for v in judge_outcome(o) if v.invariant == "I5"]
            assert found == expected, (kind, checkpoints)
