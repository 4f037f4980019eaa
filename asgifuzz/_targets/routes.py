"""The routes of a user app: parsed from ``"METHOD /path"`` options and found in
a Starlette or FastAPI router (through wrapping middleware and mounts)."""

from __future__ import annotations

import re
from typing import Any

from asgifuzz._errors import UsageError
from asgifuzz._types import ALL_METHODS


def parse_route(text: str, where: str = "--route") -> tuple[str, str]:
    """``"POST /upload"`` (or ``"/upload"`` for GET) -> ``("POST", "/upload")``."""
    method, _, path = text.strip().rpartition(" ")
    method = method.strip().upper() or "GET"
    if method not in ALL_METHODS or not path.startswith("/"):
        raise UsageError(
            f"{where} {text!r} is not a route; write METHOD /path with METHOD one "
            f"of {list(ALL_METHODS)}, e.g. 'POST /upload'"
        )
    return method, path


_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
_SAMPLE = {"int": "1", "float": "1.5", "uuid": "00000000-0000-0000-0000-000000000000"}


def discover_routes(
    app: Any, prefix: str = "", depth: int = 0
) -> list[tuple[str, str]]:
    """The ``(method, path)`` pairs of a Starlette/FastAPI app's HTTP routes.

    Looks through wrapping middleware (``.app``) and into mounts; path
    parameters get a sample value of their type. Other apps have none.
    """
    from starlette.routing import Host, Mount, Route

    if depth > 20:
        return []
    routes = getattr(app, "routes", None)
    if routes is None:
        inner = getattr(app, "app", None)
        return [] if inner is None else discover_routes(inner, prefix, depth + 1)
    found: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Route):
            path = prefix + _PARAM.sub(
                lambda m: _SAMPLE.get(m.group(2) or "", "x"), route.path
            )
            for method in sorted(route.methods or {"GET"}):
                if method in ALL_METHODS:
                    found.append((method, path or "/"))
        elif isinstance(route, Mount | Host):
            sub = prefix + (route.path if isinstance(route, Mount) else "")
            inner = discover_routes(route.app, sub, depth + 1)
            found += inner or [("GET", (sub or "") + "/")]
    return found
