"""The routes of a user app: parsed from ``"METHOD /path"`` options and found in
a Starlette or FastAPI router (through wrapping middleware and mounts).

A route's path is a template in which each path parameter says what a valid
value is: ``{item_id:int}``, ``{n:int=3..9}`` (bounds, from a FastAPI
``Path(ge=3, le=9)``), ``{x:float}``, ``{u:uuid}``, ``{p:path}``, ``{s:str}``,
``{c:choice=red|green}`` (an Enum, a Literal or a bool; values URL-quoted) and
``{v:regex=...}`` (a custom convertor's regex, URL-quoted). Starlette's
convertor and, in FastAPI, the parameter's annotation decide; the request
strategy (`asgifuzz.strategies._user.app_requests`) draws the values.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
import typing
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from asgifuzz._errors import UsageError
from asgifuzz._types import ALL_METHODS

#: The kinds of path parameter a template may name.
PARAM_KINDS = ("int", "float", "uuid", "path", "str", "choice", "regex")

_TEMPLATE_PARAM = re.compile(r"{(\w+)(?::(\w+)(?:=([^}]*))?)?}")
_CONVERTORS = {
    "IntegerConvertor": "int",
    "FloatConvertor": "float",
    "UUIDConvertor": "uuid",
    "PathConvertor": "path",
    "StringConvertor": "str",
}


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


# Templates --------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One path parameter of a template: what a valid value is."""

    name: str
    kind: str = "str"
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] = ()
    regex: str = ""


def params(template: str) -> list[Param]:
    """The path parameters of ``template``, in order (an unknown kind is a str)."""
    found = []
    for match in _TEMPLATE_PARAM.finditer(template):
        name, kind, arg = match[1], match[2] or "str", match[3] or ""
        if kind in ("int", "float") and ".." in arg:
            lo, _, hi = arg.partition("..")
            found.append(
                Param(name, kind, int(lo) if lo else None, int(hi) if hi else None)
            )
        elif kind == "choice" and arg:
            found.append(Param(name, kind, choices=tuple(map(unquote, arg.split("|")))))
        elif kind == "regex" and arg:
            found.append(Param(name, kind, regex=unquote(arg)))
        else:
            found.append(Param(name, kind if kind in PARAM_KINDS[:5] else "str"))
    return found


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with each parameter replaced by its value in ``values``."""
    return _TEMPLATE_PARAM.sub(lambda m: values[m[1]], template)


def pattern(template: str) -> re.Pattern[str]:
    """A regex that the paths filled in from ``template`` match (for checks)."""
    parts, end = [], 0
    for match in _TEMPLATE_PARAM.finditer(template):
        parts += [re.escape(template[end : match.start()]), "(.+)"]
        end = match.end()
    return re.compile("".join([*parts, re.escape(template[end:])]) + r"\Z")


def _encode(param: Param) -> str:
    if param.kind in ("int", "float") and (param.lo, param.hi) != (None, None):
        lo = "" if param.lo is None else str(param.lo)
        hi = "" if param.hi is None else str(param.hi)
        return f"{{{param.name}:{param.kind}={lo}..{hi}}}"
    if param.kind == "choice":
        values = "|".join(quote(c, safe="") for c in param.choices)
        return f"{{{param.name}:choice={values}}}"
    if param.kind == "regex":
        return f"{{{param.name}:regex={quote(param.regex, safe='')}}}"
    return f"{{{param.name}:{param.kind}}}"


def _bounds(metadata: Iterable[Any]) -> tuple[int | None, int | None]:
    """Integer bounds from pydantic/annotated-types constraints (ge, gt, le, lt)."""
    lo = hi = None
    for item in metadata:
        for attr, side in (("ge", 0), ("gt", 0), ("le", 1), ("lt", 1)):
            value = getattr(item, attr, None)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if attr == "ge":
                bound = math.ceil(value)
            elif attr == "gt":
                bound = math.floor(value) + 1
            elif attr == "le":
                bound = math.floor(value)
            else:
                bound = math.ceil(value) - 1
            if side == 0:
                lo = bound if lo is None else max(lo, bound)
            else:
                hi = bound if hi is None else min(hi, bound)
    return lo, hi


def _annotated(name: str, field: Any) -> Param | None:
    """The parameter a FastAPI path parameter's annotation asks for (None: a str)."""
    info = getattr(field, "field_info", None)
    annotation = getattr(info, "annotation", None)
    metadata = getattr(info, "metadata", ()) or ()
    if annotation is bool:
        return Param(name, "choice", choices=("true", "false"))
    if annotation in (int, float):
        lo, hi = _bounds(metadata)
        if lo is not None and hi is not None and lo > hi:
            return None
        return Param(name, annotation.__name__, lo, hi)
    if annotation is uuid.UUID:
        return Param(name, "uuid")
    values: list[Any] = []
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
    elif typing.get_origin(annotation) is typing.Literal:
        values = list(typing.get_args(annotation))
    texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    choices = tuple(t for t in texts if t and "/" not in t)
    return Param(name, "choice", choices=choices) if choices else None


def _template(route: Any, prefix: str) -> str:
    """``prefix + route.path`` with each parameter spelled as a template param."""
    convertors = getattr(route, "param_convertors", {}) or {}
    fields = {
        f.name: f for f in getattr(getattr(route, "dependant", None), "path_params", ())
    }

    def one(match: re.Match[str]) -> str:
        name = match[1]
        convertor = convertors.get(name)
        kind = _CONVERTORS.get(type(convertor).__name__, "regex")
        param = Param(name, kind, regex=getattr(convertor, "regex", "[^/]+"))
        if convertor is None:
            param = Param(name)
        if name in fields and kind in ("str", "int", "float"):
            param = _annotated(name, fields[name]) or param
        return _encode(param)

    return prefix + re.sub(r"{(\w+)(?::\w+)?}", one, route.path)


# Discovery --------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A discovered route: its method, its template and the path as declared
    (``docs``: one of FastAPI's documentation or OpenAPI routes)."""

    method: str
    template: str
    declared: str
    docs: bool = False


def _docs_paths(app: Any) -> set[str]:
    """The paths of a FastAPI app's own docs and OpenAPI routes (none for others)."""
    if not hasattr(app, "openapi_url") or not hasattr(app, "docs_url"):
        return set()
    paths = {app.openapi_url, app.docs_url, getattr(app, "redoc_url", None)}
    if app.docs_url:
        paths.add(getattr(app, "swagger_ui_oauth2_redirect_url", None))
    return {p for p in paths if isinstance(p, str) and p}


def discover_routes(app: Any, prefix: str = "", depth: int = 0) -> list[Found]:
    """The HTTP routes of a Starlette/FastAPI app, through wrapping middleware
    (``.app``) and into mounts. Other apps have none."""
    from starlette.routing import Host, Mount, Route

    if depth > 20:
        return []
    routes = getattr(app, "routes", None)
    if routes is None:
        inner = getattr(app, "app", None)
        return [] if inner is None else discover_routes(inner, prefix, depth + 1)
    docs = _docs_paths(app)
    found: list[Found] = []
    for route in routes:
        if isinstance(route, Route):
            template = _template(route, prefix) or "/"
            is_docs = route.path in docs and not getattr(
                route, "include_in_schema", True
            )
            for method in sorted(route.methods or {"GET"}):
                if method in ALL_METHODS:
                    found.append(
                        Found(method, template, prefix + route.path or "/", is_docs)
                    )
        elif isinstance(route, Mount | Host):
            sub = _template(route, prefix) if isinstance(route, Mount) else prefix
            inner = discover_routes(route.app, sub, depth + 1)
            found += inner or [Found("GET", sub + "/", sub + "/")]
    return found


def websocket_paths(app: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """The paths of a Starlette/FastAPI app's ``WebSocketRoute`` s (FastAPI's
    websocket routes are ones), through wrapping middleware and into mounts;
    a path with parameters comes filled with ``0`` and with ``a``."""
    from starlette.routing import Mount, WebSocketRoute

    if depth > 20:
        return []
    routes = getattr(app, "routes", None)
    if routes is None:
        inner = getattr(app, "app", None)
        return [] if inner is None else websocket_paths(inner, prefix, depth + 1)
    found: list[str] = []
    for route in routes:
        if isinstance(route, WebSocketRoute):
            path = prefix + route.path
            # 0 is a valid str, int and float; "a" is no int (a client may send
            # any path: FastAPI validates its annotated ones).
            filled = {re.sub(r"{\w+(?::\w+)?}", v, path) for v in ("0", "a")}
            found += sorted(filled)
        elif isinstance(route, Mount):
            found += websocket_paths(route.app, prefix + route.path, depth + 1)
    return found


def _excluder(text: str, where: str) -> tuple[str | None, str]:
    method, _, path = text.strip().rpartition(" ")
    method = method.strip().upper()
    if (method and method not in ALL_METHODS) or not path.startswith("/"):
        raise UsageError(
            f"{where} {text!r} is not a route to exclude; write [METHOD] /path "
            f"(a * matches anything), e.g. 'GET /health' or '/admin/*'"
        )
    return method or None, path


def _excludes(pattern_: tuple[str | None, str], route: Found) -> bool:
    method, path = pattern_
    if method not in (None, route.method) and (method, route.method) != ("GET", "HEAD"):
        return False
    return any(fnmatch.fnmatchcase(p, path) for p in (route.declared, route.template))


def _listed(routes: Sequence[Found]) -> str:
    by_path: dict[str, list[str]] = {}
    for r in routes:
        by_path.setdefault(r.declared, []).append(r.method)
    return ", ".join(f"{','.join(ms)} {p}" for p, ms in by_path.items())


def app_routes(
    app: Any,
    given: Iterable[str] = (),
    exclude: Iterable[str] = (),
    where: str = "--app",
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The ``(method, template)`` pairs to request and the notes saying which
    discovered routes are not requested and why.

    ``given`` (``"METHOD /path"``) are requested as written, besides the found
    ones; ``exclude`` (``"[METHOD] /path"``, ``*`` wildcards; GET covers HEAD)
    removes found ones. FastAPI's docs and OpenAPI routes are excluded by
    default (``given`` brings one back). A pattern matching no route, or
    nothing left to request, is a `UsageError`.
    """
    added = [parse_route(r, where) for r in given]
    found = discover_routes(app)
    patterns = [(text, _excluder(text, "--exclude-route")) for text in exclude]
    for text, pat in patterns:
        if not any(_excludes(pat, r) for r in found):
            raise UsageError(
                f"--exclude-route {text!r} matches no route of the app (its "
                f"routes: {_listed(found) or 'none found'}); fix the pattern"
            )
    docs = [r for r in found if r.docs and (r.method, r.declared) not in added]
    excluded = [
        r for r in found if r not in docs and any(_excludes(p, r) for _, p in patterns)
    ]
    kept = [(r.method, r.template) for r in found if r not in docs + excluded]
    every = list(dict.fromkeys([*added, *kept]))
    if not every and not found:
        every = [("GET", "/")]
    if not every:
        raise UsageError(
            f"{where}: every route of the app is excluded; request one with "
            "--route 'METHOD /path' or exclude fewer"
        )
    notes = []
    if docs:
        notes.append(
            f"not requested: {_listed(docs)} (FastAPI's docs and OpenAPI schema, "
            f"excluded by default; request one with --route '{docs[0].method} "
            f"{docs[0].declared}')"
        )
    if excluded:
        options = " ".join(f"--exclude-route {text!r}" for text, _ in patterns)
        notes.append(f"not requested: {_listed(excluded)} ({options})")
    return tuple(every), tuple(notes)
