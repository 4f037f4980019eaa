"""Where the user's code calls asyncio directly: such code fails on trio, so a
finding seen only on trio is then most likely that, not a concurrency bug.

`calls_asyncio` reads the source of the user's modules (`ast`, nothing is run):
the modules of the targets' specs, of their routes' endpoints, middleware and
lifespan, and every loaded module of the same top-level packages.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from asgifuzz._targets.specs import AppTarget, MiddlewareTarget, parse_spec

#: asyncio names that do not need asyncio's event loop (types, predicates).
NEUTRAL = frozenset(
    {
        "iscoroutine",
        "iscoroutinefunction",
        "CancelledError",
        "TimeoutError",
        "InvalidStateError",
        "QueueEmpty",
        "QueueFull",
        "IncompleteReadError",
        "LimitOverrunError",
    }
)
#: Top-level packages that are not the user's code (backend-neutral frameworks).
FRAMEWORKS = frozenset(
    {"asgifuzz", "starlette", "fastapi", "anyio", "sniffio", "pydantic", "trio"}
)


def _objects(obj: Any, depth: int = 0) -> Iterator[Any]:
    """The app's own objects: wrappers, endpoints, middleware classes, lifespan."""
    if obj is None or depth > 20:
        return
    yield obj
    for route in getattr(obj, "routes", None) or ():
        yield getattr(route, "endpoint", None)
        yield from _objects(getattr(route, "app", None), depth + 1)
    for middleware in getattr(obj, "user_middleware", None) or ():
        yield getattr(middleware, "cls", None)
    router = getattr(obj, "router", None)
    yield getattr(router, "lifespan_context", None)
    if getattr(obj, "routes", None) is None:
        yield from _objects(getattr(obj, "app", None), depth + 1)


def _module_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = getattr(type(obj), "__module__", "")
    return module if isinstance(module, str) else ""


def user_modules(*targets: AppTarget | MiddlewareTarget) -> list[str]:
    """The names of the loaded modules that hold the targets' code."""
    names: set[str] = set()
    for target in targets:
        if target.spec:
            names.add(parse_spec(target.spec, "spec", declarations=True)[1])
        if isinstance(target, AppTarget):
            names.update(_module_of(o) for o in _objects(target.app) if o is not None)
        else:
            names.add(_module_of(target.factory))
    roots = {
        n.partition(".")[0]
        for n in names
        if n and n.partition(".")[0] not in FRAMEWORKS | set(sys.stdlib_module_names)
    }
    return sorted(
        name
        for name in list(sys.modules)
        if name.partition(".")[0] in roots and not name.startswith("builtins")
    )


def _shown(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def asyncio_calls(source: str, filename: str) -> list[str]:
    """``"file:line (asyncio.name)"`` for each direct use of asyncio's loop in
    ``source``: ``asyncio.sleep(...)`` (or through ``import asyncio as aio``)
    and names taken with ``from asyncio import ...``; types and predicates
    (`NEUTRAL`) are not counted."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return []
    aliases: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update(
                a.asname or a.name for a in node.names if a.name == "asyncio"
            )
        elif isinstance(node, ast.ImportFrom) and node.module == "asyncio":
            for alias in node.names:
                if alias.name not in NEUTRAL:
                    found.append((node.lineno, f"from asyncio import {alias.name}"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in NEUTRAL
        ):
            found.append((node.lineno, f"asyncio.{node.attr}"))
    where = _shown(filename)
    return [f"{where}:{line} ({what})" for line, what in sorted(set(found))]


def calls_asyncio(*targets: AppTarget | MiddlewareTarget) -> list[str]:
    """Where the targets' code uses asyncio directly (``"app/main.py:12
    (asyncio.sleep)"``, in file and line order); empty when it does not."""
    places: list[str] = []
    seen: set[str] = set()
    for name in user_modules(*targets):
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None)
        if not filename or not filename.endswith(".py") or filename in seen:
            continue
        seen.add(filename)
        try:
            source = inspect.getsource(module)  # type: ignore[arg-type]
        except (OSError, TypeError):
            continue
        places += asyncio_calls(source, filename)
    return places


def only_on_trio(places: list[str]) -> str:
    """The summary line of a finding seen only on trio (``places`` from
    `calls_asyncio`)."""
    if not places:
        return "only on trio"
    more = f" and {len(places) - 1} more" if len(places) > 1 else ""
    return (
        f"only on trio; your code calls asyncio directly at {places[0]}{more}, "
        "which cannot run on trio: try --backend asyncio"
    )


def quiet_on_trio(outcomes: Mapping[str, int], places: list[str]) -> str | None:
    """The summary line when the app raised more often on trio than on asyncio
    (``outcomes``: a `FuzzReport`'s counts, ``"trio:app-exception"`` ...) and
    its code calls asyncio directly: such runs answer 500, which is the app's
    business, so they are no finding, and without this line nothing says why."""
    trio = outcomes.get("trio:app-exception", 0)
    other = outcomes.get("asyncio:app-exception", 0)
    if not places or trio <= other:
        return None
    return (
        f"the app raised in {trio} runs on trio ({other} on asyncio); your code "
        f"calls asyncio directly at {places[0]}, which cannot run on trio: try "
        "--backend asyncio"
    )
