"""Models: a case as plain, JSON-serialisable data, and `build` to make it live.

A `Case` says everything about one run: the middleware `Stack` (`Layer` s,
outermost first), the `Endpoint`, the `Request` as the client sends it, when the
`Client` goes away and how the `Server` behaves.
"""

from __future__ import annotations

from asgifuzz._types import METHODS
from asgifuzz.models._build import build
from asgifuzz.models._case import FORMAT_VERSION, Case, case_from_data, case_to_data
from asgifuzz.models._lifespan import (
    LIFESPAN_APPS,
    LIFESPAN_LAYER_KINDS,
    PHASES,
    Lifespan,
)
from asgifuzz.models._parts import (
    BACKGROUNDS,
    BEHAVIOURS,
    DISCONNECTS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    SERVERS,
    STARLETTE_MIDDLEWARES,
    Client,
    Endpoint,
    Layer,
    Request,
    Server,
    Stack,
)

__all__ = [
    "BACKGROUNDS",
    "BEHAVIOURS",
    "DISCONNECTS",
    "ENDPOINT_KINDS",
    "FORMAT_VERSION",
    "LAYER_KINDS",
    "LIFESPAN_APPS",
    "LIFESPAN_LAYER_KINDS",
    "METHODS",
    "PHASES",
    "SERVERS",
    "STARLETTE_MIDDLEWARES",
    "Case",
    "Client",
    "Endpoint",
    "Layer",
    "Lifespan",
    "Request",
    "Server",
    "Stack",
    "build",
    "case_from_data",
    "case_to_data",
]
