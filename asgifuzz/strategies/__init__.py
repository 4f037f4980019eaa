"""Hypothesis strategies for asgifuzz cases; each returns plain `asgifuzz.models` data."""

from __future__ import annotations

from asgifuzz.strategies._cases import cases
from asgifuzz.strategies._lifespan import lifespan_cases, lifespans
from asgifuzz.strategies._parts import (
    body_chunkings,
    disconnect_schedules,
    endpoints,
    middleware_stacks,
    requests,
    server_profiles,
)
from asgifuzz.strategies._ws import (
    websocket_cases,
    websocket_sessions,
    websocket_stacks,
)

__all__ = [
    "body_chunkings",
    "cases",
    "disconnect_schedules",
    "endpoints",
    "lifespan_cases",
    "lifespans",
    "middleware_stacks",
    "requests",
    "server_profiles",
    "websocket_cases",
    "websocket_sessions",
    "websocket_stacks",
]
