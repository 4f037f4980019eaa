"""X1-X3, each shown to fire on a hand-built bad transcript and to stay quiet
on the correct one; the server's side of each extension on real runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fakes import STARLETTE_PATHSENDS

from asgifuzz._driver.extensions import (
    EARLY_HINT,
    PATHSEND,
    TRAILERS,
    scope_extensions,
)
from asgifuzz._driver.outcome import Outcome, ServerResponse
from asgifuzz._driver.runner import run
from asgifuzz._oracles.extensions import (
    extension_sequences,
    pathsend_content,
    trailers,
)
from asgifuzz._oracles.facts import facts
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, Endpoint, Layer, Server, Stack
from asgifuzz.models._extensions import file_of
from asgifuzz.models._record import Event, Recorder

START = {"type": "http.response.start", "status": 200, "headers": []}
ANNOUNCED = {**START, "trailers": True}
BODY = {"type": "http.response.body", "body": b"ok", "more_body": False}
TRAILER = {"type": TRAILERS, "headers": [(b"x-sum", b"1")], "more_trailers": False}
HINT = {"type": EARLY_HINT, "links": [b"</a.css>; rel=preload"]}
ALL = (TRAILERS, PATHSEND, EARLY_HINT)


def outcome(
    sends: Sequence[dict[str, Any]],
    *,
    advertised: tuple[str, ...] = ALL,
    response: ServerResponse | None = None,
    inner: Sequence[dict[str, Any]] | None = None,
) -> Outcome:
    """Server -> app -> endpoint: ``sends`` cross both boundaries (``inner``,
    if given, the endpoint's)."""
    rec = Recorder(boundaries=["app", "endpoint"])
    rec.advertised = {0: advertised, 1: advertised}
    for where, messages in ((1, inner if inner is not None else sends), (0, sends)):
        for m in messages:
            rec.events.append(Event(rec.tick(), 0.0, where, "send", dict(m)))
    response = response or ServerResponse(True, 200, [], b"ok", 1, True)
    return Outcome(
        case=Case(), backend="asyncio", recorder=rec, response=response, returned=True
    )


def keys(o: Outcome) -> list[str]:
    f = facts(o)
    return [
        v.key
        for check in (trailers, pathsend_content, extension_sequences)
        for v in check(f)
    ]


def test_quiet_on_valid_uses_of_each_extension() -> None:
    got = ServerResponse(True, 200, [], b"ok", 1, True, trailers=[(b"x-sum", b"1")])
    assert keys(outcome([HINT, ANNOUNCED, BODY, TRAILER], response=got)) == []
    path = file_of(b"ok")
    sent = ServerResponse(True, 200, [], b"ok", 1, True, pathsend=path)
    assert keys(outcome([START, {"type": PATHSEND, "path": path}], response=sent)) == []


@pytest.mark.parametrize(
    ("sends", "key"),
    [
        ([START, BODY, TRAILER], "X1:unannounced"),
        ([ANNOUNCED, {**BODY, "more_body": True}, TRAILER], "X1:early"),
    ],
)
def test_x1_fires_on_trailers_out_of_place(
    sends: list[dict[str, Any]], key: str
) -> None:
    assert key in keys(outcome(sends))


def test_x1_fires_on_trailers_a_layer_lost() -> None:
    o = outcome([START, BODY], inner=[ANNOUNCED, BODY, TRAILER])
    assert keys(o) == ["X1:lost"]
    # Not advertised at the server: nothing was owed.
    assert keys(outcome([START, BODY], inner=[START, BODY], advertised=())) == []


def test_x2_fires_on_a_body_that_is_not_the_file() -> None:
    path = file_of(b"the file")
    wrong = ServerResponse(True, 200, [], b"", 1, True, pathsend=path)
    assert keys(outcome([START, {"type": PATHSEND, "path": path}], response=wrong)) == [
        "X2"
    ]
    gzipped = ServerResponse(
        True, 200, [(b"content-encoding", b"gzip")], b"", 1, True, pathsend=path
    )
    assert (
        keys(outcome([START, {"type": PATHSEND, "path": path}], response=gzipped)) == []
    )


@pytest.mark.parametrize(
    ("sends", "advertised", "key"),
    [
        ([ANNOUNCED, BODY, TRAILER], (), "X3:unadvertised"),
        ([START, BODY, HINT], ALL, "X3:late"),
        (
            [START, {**BODY, "more_body": True}, {"type": PATHSEND, "path": "/x"}],
            ALL,
            "X3:mixed",
        ),
    ],
)
def test_x3_fires_on_an_invalid_extension_sequence(
    sends: list[dict[str, Any]], advertised: tuple[str, ...], key: str
) -> None:
    assert key in keys(outcome(sends, advertised=advertised))


def test_the_profiles_advertise_what_the_servers_do() -> None:
    assert scope_extensions("uvicorn", "1.1") is None
    assert scope_extensions("daphne", "1.1") is None
    assert scope_extensions("hypercorn", "1.1") == {}
    assert set(scope_extensions("hypercorn", "2") or {}) == {
        TRAILERS,
        EARLY_HINT,
        "http.response.push",
    }
    # granian 2.8.9 advertises websocket denial responses on HTTP too (conformance).
    assert set(scope_extensions("granian", "1.1") or {}) == {
        PATHSEND,
        "websocket.http.response",
    }


@pytest.mark.parametrize(
    ("kind", "server", "field", "expected"),
    [
        ("trailers", Server("hypercorn", http_version="2"), "trailers", True),
        ("trailers", Server("uvicorn"), "trailers", False),
        # Starlette's FileResponse sends a pathsend only since 0.38.
        ("pathsend", Server("granian"), "pathsend", STARLETTE_PATHSENDS),
        ("pathsend", Server("hypercorn", http_version="2"), "pathsend", False),
        ("early_hint", Server("strict", http_version="2"), "hints", True),
        ("early_hint", Server("granian"), "hints", False),
    ],
)
def test_each_endpoint_uses_its_extension_only_where_advertised(
    backend: str, kind: str, server: Server, field: str, expected: bool
) -> None:
    o = run(Case(endpoint=Endpoint(kind=kind), server=server), backend)
    assert o.response.complete
    assert o.response.body == b"hello"
    assert bool(getattr(o.response, field)) is expected


@pytest.mark.parametrize(
    "layer", ["asgi.replace_body", "bhm.transform_body", "starlette.gzip"]
)
def test_body_rewriters_strip_or_pass_pathsend(layer: str) -> None:
    case = Case(
        endpoint=Endpoint(kind="pathsend"),
        server=Server("granian"),
        stack=Stack((Layer(layer),)),
    )
    verdict = judge(case)
    assert not [v for vs in verdict.violations.values() for v in vs]
