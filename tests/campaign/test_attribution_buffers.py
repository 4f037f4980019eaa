"""Attribution with a user layer that holds the response back (a buffer, a
compressor): Starlette's failure below it shows another way than below a
pass-through, so the swap that tells it apart is Starlette's own buffering
layer of the family (``replace_body``); the user's own bugs stay theirs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgifuzz._corpus.entries import parse_version, starlette_version
from asgifuzz._oracles.verdict import judge, stand_ins
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets import specs
from asgifuzz.models import Case, Client, Endpoint, Layer, Stack

TARGETS = Path(__file__).parents[1] / "targets"  # declared_code.py
#: Starlette's failure these tests attribute: a failed stream passed on as
#: complete by BaseHTTPMiddleware (corpus/bhm-failed-stream-looks-complete.json,
#: 0.46.0 on; also 0.15-0.18, before the releases the compat run uses).
NEEDS_LOOKS_COMPLETE = pytest.mark.skipif(
    (0, 19) <= parse_version(starlette_version()) < (0, 46),
    reason="this Starlette passes a failed stream on as failed "
    "(bhm-failed-stream-looks-complete affects 0.15-0.18 and 0.46.0 on)",
)


@pytest.fixture(autouse=True)
def _buffer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(TARGETS))
    with specs.scoped(({}, {})):
        yield
    sys.modules.pop("declared_code", None)


def _case(bug: str = "", below: str = "bhm.passthrough") -> Case:
    spec = f"B=declared_code:Buffer(bug={bug!r}); buffers=True"
    specs.allow_middleware(specs.load_middleware(spec))
    return Case(
        stack=Stack((Layer("user.B"), Layer(below))),
        endpoint=Endpoint(kind="raise_streaming", chunks=3),
    )


def _keys(found: dict[str, list[Violation]]) -> set[str]:
    return {v.key for vs in found.values() for v in vs}


@NEEDS_LOOKS_COMPLETE
def test_starlettes_failure_below_a_buffer_is_starlettes(backend: str) -> None:
    # Starlette's BaseHTTPMiddleware passes a stream that failed on as complete
    # (report B, I8:complete+); a buffer above it then sends a whole 200, where
    # without the BaseHTTPMiddleware the client gets a 500: I8:status.
    case = _case()
    assert _keys(judge(stand_ins(case), (backend,)).violations) == {"I8:complete+"}
    verdict = judge(case, (backend,))
    assert _keys(verdict.violations) == set()
    assert _keys(verdict.elsewhere) == {"I8:status"}
    assert verdict.swapped is not None
    assert [la.kind for la in verdict.swapped.stack.layers] == [
        "asgi.replace_body",
        "bhm.passthrough",
    ]
    # the swapped case, all Starlette and built-in code, fails the same way
    assert _keys(judge(verdict.swapped, (backend,)).violations) == {"I8:status"}


@pytest.mark.parametrize(
    ("bug", "endpoint", "client", "key"),
    [
        ("lose-last", Endpoint(), Client(), "I8:body-"),
        (
            "no-flush",
            Endpoint(kind="stream", chunks=3, interval=1),
            Client("checkpoints", 3),
            "I4:app",
        ),
    ],
)
def test_a_buffers_own_bug_stays_its_own(
    backend: str, bug: str, endpoint: Endpoint, client: Client, key: str
) -> None:
    stack = _case(bug, below="asgi.passthrough").stack
    verdict = judge(Case(stack=stack, endpoint=endpoint, client=client), (backend,))
    assert key in _keys(verdict.violations)
    assert key not in _keys(verdict.elsewhere)


@NEEDS_LOOKS_COMPLETE
def test_a_pass_through_is_swapped_for_a_pass_through(backend: str) -> None:
    # A layer that does not hold the response back keeps the pass-through swap
    # (the buffering one is tried only for layers that held it back).
    specs.allow_middleware(specs.load_middleware("P=declared_code:Recase"))
    case = Case(
        stack=Stack((Layer("user.P"), Layer("bhm.passthrough"))),
        endpoint=Endpoint(kind="raise_streaming", chunks=3),
    )
    verdict = judge(case, (backend,))
    assert verdict.swapped is not None
    assert verdict.swapped.stack.layers[0].kind == "asgi.passthrough"
