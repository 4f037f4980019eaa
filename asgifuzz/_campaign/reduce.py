"""A greedy reducer of cases, for failures Hypothesis cannot shrink (crashes).

Hypothesis shrinks a failure in the process that runs it; a case that kills
its process leaves nothing to shrink there. `shrink` works on the case itself
instead (no choice sequence needed): it tries `simpler` cases, biggest steps
first (drop every layer, then one layer; drop the body, join its segments,
drop one; then the headers, the query string, the endpoint, the client, the
server, the seed), keeps the first that still fails, and starts over from it,
until none does or the time is up. A candidate counts only when it is
simpler by `complexity` (fewer layers, then plainer ones, fewer and shorter body
segments, fewer headers, a shorter query, fewer parts off their defaults), so
the loop ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from asgifuzz._corpus.entries import case_size
from asgifuzz.models import Case
from asgifuzz.models._parts import Client, Endpoint, Request, Server, Stack

_Text = TypeVar("_Text", str, bytes)


@dataclass
class Shrunk:
    """What `shrink` did: the smallest failing case, how many cases it tried
    and how many of them failed, and whether it ran out of candidates
    (``complete``) or of time."""

    case: Case
    tries: int = 0
    failed: int = 0
    complete: bool = False


def _halves(text: _Text) -> Iterator[_Text]:
    """Shorter versions of ``text``: empty, then prefixes of half, then minus one."""
    yield text[:0]
    if len(text) > 1:
        yield text[: len(text) // 2]
        yield text[:-1]


def _stacks(stack: Stack) -> Iterator[Stack]:
    layers = stack.layers
    if layers:
        yield replace(stack, layers=())
    for i in range(len(layers)):
        yield replace(stack, layers=layers[:i] + layers[i + 1 :])
    for i, layer in enumerate(layers):
        plain = replace(layer, pauses=(0, 0), options={})
        if plain != layer:
            yield replace(stack, layers=(*layers[:i], plain, *layers[i + 1 :]))
    if stack.mode != Stack().mode:
        yield replace(stack, mode=Stack().mode)


def _requests(request: Request) -> Iterator[Request]:
    body, headers = request.body, request.headers
    if body:
        yield replace(request, body=())
    if len(body) > 1:
        yield replace(request, body=(b"".join(body),))
        for i in range(len(body)):
            yield replace(request, body=body[:i] + body[i + 1 :])
    for i, chunk in enumerate(body):
        for shorter in _halves(chunk):
            yield replace(request, body=(*body[:i], shorter, *body[i + 1 :]))
    if headers:
        yield replace(request, headers=())
    for i in range(len(headers)):
        yield replace(request, headers=headers[:i] + headers[i + 1 :])
    for query in _halves(request.query):
        yield replace(request, query=query)
    default = Request()
    for name in ("path", "method", "scheme"):
        if getattr(request, name) != getattr(default, name):
            yield replace(request, **{name: getattr(default, name)})


def complexity(case: Case) -> tuple[int, ...]:
    """How far ``case`` is from the simplest case, compared in order: every
    step of `simpler` that counts makes one figure smaller and none before it
    bigger, so a greedy walk down ends."""
    layers, request = case.stack.layers, case.request
    default = Request()
    return (
        len(layers),
        sum(la.pauses != (0, 0) or bool(la.options) for la in layers),
        len(request.body),
        len(request.body_bytes),
        len(request.headers),
        len(request.query),
        sum(
            (
                case.stack.mode != Stack().mode,
                request.path != default.path,
                request.method != default.method,
                request.scheme != default.scheme,
                case.endpoint != Endpoint(),
                case.client != Client(),
                case.server != Server(),
                case.seed != 0,
            )
        ),
        case_size(case),
    )


def simpler(case: Case) -> Iterator[Case]:
    """Cases simpler than ``case`` by one step, biggest steps first (some may
    be no simpler by `complexity`: `shrink` skips those)."""
    for stack in _stacks(case.stack):
        yield replace(case, stack=stack)
    for request in _requests(case.request):
        yield replace(case, request=request)
    if case.endpoint != Endpoint():
        yield replace(case, endpoint=Endpoint())
    if case.client != Client():
        yield replace(case, client=Client())
    if case.server != Server():
        yield replace(case, server=Server())
    if case.seed:
        yield replace(case, seed=0)


def shrink(
    case: Case,
    fails: Callable[[Case], bool],
    *,
    deadline: float,
    on_smaller: Callable[[Case], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Shrunk:
    """The smallest case `simpler` reaches from ``case`` (which fails) while
    ``fails(candidate)`` holds, trying until ``time.monotonic()`` passes
    ``deadline`` or ``stop()``; ``on_smaller`` hears of each smaller one."""
    result = Shrunk(case)
    size = complexity(case)
    progress = True
    while progress:
        progress = False
        for candidate in simpler(result.case):
            if time.monotonic() > deadline or stop():
                return result
            smaller = complexity(candidate)
            if smaller >= size:
                continue
            result.tries += 1
            if fails(candidate):
                result.failed += 1
                result.case, size, progress = candidate, smaller, True
                if on_smaller is not None:
                    on_smaller(candidate)
                break
    result.complete = True
    return result
