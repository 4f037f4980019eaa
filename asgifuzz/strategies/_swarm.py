"""Swarm generation (Groce et al., "Swarm testing", ISSTA 2012) for `cases`.

Each case first draws a feature set: which layer behaviours (and whether the
pure-ASGI family), endpoint kinds, content-type groups of typed bodies,
disconnect kinds and server profiles may appear in it; then it draws its parts
within that set. A case that may hold only two layer behaviours and one
endpoint kind holds their combinations far more often than one uniform
distribution over everything does, and a feature that masks others (a
short-circuiting layer, a client that leaves at once) is absent from half the
cases.

The feature set is a generation device only: the case is the same plain data,
and its JSON form (and corpus hashes) do not change. Each category is one to
three draws of a bit mask (a set bit turns one feature on, each half the
time); a sparse case (two in three) ANDs two or three such masks, each
feature then on a quarter or an eighth of the time, so that a feature
often comes without the others that mask it (and the simplest, e.g. a
client that stays, comes up more often). The simplest feature of each
category (`bhm.passthrough`, ``plain``, the untyped body, ``never``,
uvicorn) is always on. Within the set, each part
draws its kind exactly as without the swarm, and a drawn kind that is off
stands for one that is on; so shrinking the masks toward 0 (fewer features)
keeps a case whose kinds are on, and the kinds still shrink to the simplest.

``ASGIFUZZ_SWARM=0`` in the environment (or ``cases(swarm=False)``) turns
swarm generation off, to measure what it contributes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from hypothesis import strategies as st

from asgifuzz._types import METHODS
from asgifuzz.models import (
    DISCONNECTS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    SERVERS,
    Case,
    Client,
    Endpoint,
    Request,
    Server,
    Stack,
)
from asgifuzz.models._parts import BEHAVIOURS, STACK_MODES
from asgifuzz.strategies import _vocabulary as vocabulary
from asgifuzz.strategies._parts import (
    HEADERS,
    LAYER_FIELDS,
    body_chunkings,
    endpoint_of,
    layer_from,
)

#: The layer features after the always-on `bhm.passthrough`: the pure-ASGI
#: family, each other behaviour (of both families) and each of Starlette's
#: middlewares.
LAYER_FEATURES = (
    "asgi",
    *BEHAVIOURS[1:],
    *(k for k in LAYER_KINDS if k.startswith("starlette.")),
)
#: The other categories' features after their always-on first one.
ENDPOINT_FEATURES = ENDPOINT_KINDS[1:]
CONTENT_FEATURES = vocabulary.CONTENT_GROUPS
DISCONNECT_FEATURES = DISCONNECTS[1:]
SERVER_FEATURES = SERVERS[1:]

#: Masks of at most 7 bits: Hypothesis draws integers in [0, 127] uniformly
#: (wider ranges lean toward small values, which would starve the high bits).
_MASK_BITS = 7
_MASK = st.integers(0, (1 << _MASK_BITS) - 1)
_SWARM_ENV = "ASGIFUZZ_SWARM"
#: How sparse a case's feature set is: each feature on with chance 1/2, 1/4
#: or 1/8 (one, two or three masks ANDed); shrinks toward 1/2.
_SPARSE = st.integers(0, 2)


def swarm_default() -> bool:
    """Whether `cases` uses swarm generation by default: unless
    ``ASGIFUZZ_SWARM`` is ``0``, ``off``, ``false`` or ``no``."""
    return os.environ.get(_SWARM_ENV, "1").strip().lower() not in (
        "0",
        "off",
        "false",
        "no",
    )


@dataclass(frozen=True)
class Features:
    """One case's feature set: what may appear in it (each tuple simplest first)."""

    layers: tuple[str, ...]
    endpoints: tuple[str, ...]
    bodies: tuple[vocabulary.BodyType, ...]
    disconnects: tuple[str, ...]
    servers: tuple[str, ...]


def _on(names: Sequence[str], mask: int) -> frozenset[str]:
    return frozenset(n for i, n in enumerate(names) if mask >> i & 1)


@lru_cache(maxsize=4096)
def _layer_kinds(mask: int) -> tuple[str, ...]:
    # The pass-through behaviour is on in each family that is on.
    on = _on(LAYER_FEATURES, mask) | {BEHAVIOURS[0]}
    families = ("bhm", "asgi") if "asgi" in on else ("bhm",)
    return tuple(
        k
        for k in LAYER_KINDS
        if k in on or (k.partition(".")[0] in families and k.partition(".")[2] in on)
    )


@lru_cache(maxsize=128)
def _bodies(mask: int) -> tuple[vocabulary.BodyType, ...]:
    on = _on(CONTENT_FEATURES, mask)
    return tuple(
        b
        for b in vocabulary.BODY_TYPES
        if vocabulary.content_group(b.content_type) in on
    )


def _draw_mask(draw: st.DrawFn, width: int, sparse: int = 0) -> int:
    mask = (1 << width) - 1
    for _ in range(1 + sparse):  # each AND halves each feature's chance
        drawn = 0
        for shift in range(0, width, _MASK_BITS):
            drawn |= draw(_MASK) << shift
        mask &= drawn
    return mask


def draw_features(draw: st.DrawFn, sparse_ok: bool = False) -> Features:
    """Draw a feature set: each feature of each category on half the time,
    or (in a sparse case) a quarter or an eighth of the time. Only the
    built-in models' cases are sparse (``sparse_ok``): a case with the user's
    layers or app draws as before (its checks were set on those draws; each
    choice more is one more to shrink, and a shrink candidate that hangs costs
    the watchdog's limit)."""
    sparse = draw(_SPARSE) if sparse_ok else 0
    layers = _layer_kinds(_draw_mask(draw, len(LAYER_FEATURES), sparse))
    endpoints = (ENDPOINT_KINDS[0], *_on_in_order(ENDPOINT_FEATURES, draw, sparse))
    bodies = _bodies(_draw_mask(draw, len(CONTENT_FEATURES), sparse))
    disconnects = (DISCONNECTS[0], *_on_in_order(DISCONNECT_FEATURES, draw, sparse))
    servers = (SERVERS[0], *_on_in_order(SERVER_FEATURES, draw, sparse))
    return Features(layers, endpoints, bodies, disconnects, servers)


def _on_in_order(
    names: Sequence[str], draw: st.DrawFn, sparse: int = 0
) -> tuple[str, ...]:
    on = _on(names, _draw_mask(draw, len(names), sparse))
    return tuple(n for n in names if n in on)


def within(kind: str, registry: Sequence[str], enabled: Sequence[str]) -> str:
    """``kind`` (drawn from ``registry``) if it is ``enabled`` (a subset of
    ``registry`` that starts with its first kind), else the enabled kind it
    stands for, in turn by its position among those after the first (the
    always-on first kind is then not drawn more often than the others)."""
    if kind in enabled:
        return kind
    if len(enabled) == 1:
        return enabled[0]
    return enabled[1 + registry.index(kind) % (len(enabled) - 1)]


_METHODS = st.sampled_from(METHODS)
_QUERIES = st.sampled_from(("", "q=1"))
_SCHEMES = st.sampled_from(("http", "https"))
_OTHERS = st.lists(st.sampled_from(HEADERS), max_size=3, unique=True)
_UNTYPED = body_chunkings()
_MODES = st.sampled_from(STACK_MODES)
_RAW_STACK = st.lists(st.tuples(st.sampled_from(LAYER_KINDS), LAYER_FIELDS), max_size=4)
_ENDPOINT_KINDS = st.sampled_from(ENDPOINT_KINDS)
_DISCONNECTS = st.sampled_from(DISCONNECTS)
_SERVERS = st.sampled_from(SERVERS)
_AT = st.integers(0, 6)
_CHECKPOINTS = st.integers(0, 2)
_SEEDS = st.integers(0, 2**32 - 1)


def _stack(draw: st.DrawFn, f: Features) -> Stack:
    # As `middleware_stacks()`: up to 4 layers, each a whole list element (so
    # that shrinking deletes whole layers), then the mode.
    drawn = draw(_RAW_STACK)
    return Stack(
        layers=tuple(
            layer_from(within(kind, LAYER_KINDS, f.layers), fields)
            for kind, fields in drawn
        ),
        mode=draw(_MODES),
    )


def _request(draw: st.DrawFn, f: Features) -> Request:
    method, query = draw(_METHODS), draw(_QUERIES)
    headers, body = vocabulary.contents_of(
        draw, _OTHERS, _UNTYPED, max_chunks=4, bodies=f.bodies
    )
    return Request(method, "/", query, headers, body, draw(_SCHEMES))


def _client(draw: st.DrawFn, f: Features) -> Client:
    kind = within(draw(_DISCONNECTS), DISCONNECTS, f.disconnects)
    if kind in ("never", "response_start"):
        return Client(disconnect=kind)
    return Client(disconnect=kind, at=draw(_AT))


Part = st.SearchStrategy
Finish = Callable[[Request], Request]


@st.composite
def swarm_cases(
    draw: st.DrawFn,
    stack: Part[Stack] | None,
    endpoint: Part[Endpoint] | None,
    request: Part[Request] | None,
    client: Part[Client] | None,
    server: Part[Server] | None,
    app: str,
    finish: Finish | None,
    features: Features | None = None,
    sparse: bool = False,
) -> Case:
    """Cases drawn within a feature set (drawn by `draw_features`, or the given
    ``features``); a part given as a strategy is drawn from it as it is (the
    user's layers and app included). ``sparse``: the feature sets of the
    built-in models' cases may be sparse (`draw_features`)."""
    f = (
        features
        if features is not None
        else draw_features(draw, sparse and stack is None and endpoint is None)
    )
    drawn_stack = draw(stack) if stack is not None else _stack(draw, f)
    drawn_endpoint = (
        draw(endpoint)
        if endpoint is not None
        else endpoint_of(
            draw, within(draw(_ENDPOINT_KINDS), ENDPOINT_KINDS, f.endpoints)
        )
    )
    drawn_request = draw(request) if request is not None else _request(draw, f)
    if finish is not None:
        drawn_request = finish(drawn_request)
    drawn_client = draw(client) if client is not None else _client(draw, f)
    drawn_server = (
        draw(server)
        if server is not None
        else Server(
            name=within(draw(_SERVERS), SERVERS, f.servers),
            send_checkpoints=draw(_CHECKPOINTS),
            receive_checkpoints=draw(_CHECKPOINTS),
        )
    )
    return Case(
        stack=drawn_stack,
        endpoint=drawn_endpoint,
        request=drawn_request,
        client=drawn_client,
        server=drawn_server,
        seed=draw(_SEEDS),
        app=app,
    )
