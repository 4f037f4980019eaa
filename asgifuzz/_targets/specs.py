"""User targets: the user's own middleware classes and ASGI apps, allowed by name.

A case names a user target only by name (``"user.Timing"`` as a layer kind,
``"app": "main"``); the live object comes from this process's registry, which
only the user fills: from ``--middleware``/``--app``, ``[tool.asgifuzz]`` in
``pyproject.toml``, or the Python API. So a corpus file can never make asgifuzz
import anything: a case naming a target that was not allowed is refused with the
command that would allow it.

Specs are ``[NAME=]module.path:attr[(literal args)]``, e.g.
``mypkg.auth:Auth(secret='x')``; the arguments are Python literals, parsed with
`ast.literal_eval`, never evaluated (`asgifuzz._targets.spec_text`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from asgifuzz._errors import UsageError
from asgifuzz._targets.declarations import NOTHING, Declaration, declaration
from asgifuzz._targets.routes import app_routes
from asgifuzz._targets.shapes import asgi_problem, call_factory, calls, short
from asgifuzz._targets.shapes import import_object as import_object  # re-exported
from asgifuzz._targets.spec_text import parse_spec as parse_spec  # re-exported
from asgifuzz._targets.spec_text import spec_declarations
from asgifuzz._types import ASGIApp, Receive, Scope, Send

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class MiddlewareTarget:
    """A user's middleware class (or factory) with its constructor arguments.

    ``factory(app, *args, **kwargs)`` must return an ASGI app; `BaseHTTPMiddleware`
    subclasses and pure-ASGI classes both qualify. ``spec`` is the import path
    with the arguments (empty when the target was given as a Python object
    whose arguments are not literals): the CLI option that allows it again.
    ``declared``: what the layer declares it does (`Declaration`).
    """

    name: str
    factory: Callable[..., ASGIApp]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    spec: str = ""
    declared: Declaration = NOTHING

    @property
    def kind(self) -> str:
        """The layer kind a case uses for this middleware: ``user.<name>``."""
        return f"user.{self.name}"

    @property
    def base_http(self) -> bool:
        """Whether this middleware is a Starlette `BaseHTTPMiddleware` (its
        family, for the built-in stand-in that attribution swaps in)."""
        # Starlette only when asked: this module is imported by the CLI's --help.
        from starlette.middleware.base import BaseHTTPMiddleware

        if isinstance(self.factory, type):
            return issubclass(self.factory, BaseHTTPMiddleware)
        return isinstance(self.wrap(_probe_app), BaseHTTPMiddleware)  # a factory

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """Instantiate the middleware around ``app``."""
        return self.factory(app, *self.args, **self.kwargs)

    def _identity(self) -> tuple[object, ...]:
        kwargs = tuple(sorted(self.kwargs.items(), key=str))
        return (self.factory, self.args, kwargs, self.declared)


@dataclass(frozen=True)
class AppTarget:
    """A user's ASGI app and the routes to draw requests over.

    ``routes`` are ``(method, path template)`` pairs (`asgifuzz._targets.routes`);
    ``lifespan`` says whether each run goes through the ASGI lifespan protocol
    (startup before the request, shutdown after it, in the run's own event
    loop); ``notes`` say which found routes are not requested, and why.
    """

    name: str
    app: ASGIApp
    routes: tuple[tuple[str, str], ...] = (("GET", "/"),)
    spec: str = ""
    lifespan: bool = True
    notes: tuple[str, ...] = ()


_MIDDLEWARE: dict[str, MiddlewareTarget] = {}
_APPS: dict[str, AppTarget] = {}
#: The registry of one test (`scoped`), or None: the process's.
_SCOPE: ContextVar[tuple[dict[str, MiddlewareTarget], dict[str, AppTarget]] | None] = (
    ContextVar("asgifuzz_targets", default=None)
)


@contextmanager
def scoped(
    registry: tuple[dict[str, MiddlewareTarget], dict[str, AppTarget]],
) -> Iterator[None]:
    """Allow and look up targets in ``registry`` (``({}, {})``: a new one)
    inside the block: names are per test, not per process (the pytest plugin
    gives each `given_cases` test its own). Lookups fall back to the process's."""
    token = _SCOPE.set(registry)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _middleware() -> dict[str, MiddlewareTarget]:
    scope = _SCOPE.get()
    return _MIDDLEWARE if scope is None else scope[0]


def _apps() -> dict[str, AppTarget]:
    scope = _SCOPE.get()
    return _APPS if scope is None else scope[1]


# Registry ---------------------------------------------------------------------


def allow_middleware(target: MiddlewareTarget) -> MiddlewareTarget:
    """Allow ``target`` in this process (idempotent for the same target)."""
    registry = _middleware()
    old = registry.get(target.name)
    if old is not None and old._identity() != target._identity():
        raise UsageError(
            f"two different middleware targets are both named {target.name!r} "
            f"({old.spec or old.factory!r} and {target.spec or target.factory!r}); "
            "give them names: --middleware NAME=module:Class(...), or a dict "
            "{name: target} in the Python API"
        )
    registry[target.name] = target
    return target


def allow_app(target: AppTarget) -> AppTarget:
    """Allow the app ``target`` in this process (replaces one of the same name)."""
    _apps()[target.name] = target
    return target


def named_spec(name: str, spec: str) -> str:
    """``NAME=spec``: the option value that allows a target under its name."""
    return spec if spec.startswith(f"{name}=") else f"{name}={spec}"


def middleware_target(
    name: str, where: str = "the case", spec: str = ""
) -> MiddlewareTarget:
    """The allowed middleware called ``name``; `UsageError` with the fix if none."""
    found = _middleware().get(name) or _MIDDLEWARE.get(name)
    if found is None:
        option = named_spec(name, spec)
        raise UsageError(
            f"{where} names the user middleware {name!r}, which this run does not "
            f"allow (allowed: {sorted(_MIDDLEWARE) or 'none'}); allow it with "
            f"--middleware {option if spec else name + '=module.path:Class(...)'!r} "
            "or in [tool.asgifuzz] middleware in pyproject.toml (a corpus file "
            "never makes asgifuzz import code)"
        )
    return found


def app_target(name: str, where: str = "the case", spec: str = "") -> AppTarget:
    """The allowed app called ``name``; `UsageError` with the fix if none."""
    found = _apps().get(name) or _APPS.get(name)
    if found is None:
        raise UsageError(
            f"{where} names the app {name!r}, which this run does not allow "
            f"(allowed: {sorted(_APPS) or 'none'}); allow it with "
            f"--app {spec or name + '=module.path:app'!r} or [tool.asgifuzz] app "
            "in pyproject.toml (a corpus file never makes asgifuzz import code)"
        )
    return found


def require(
    case: Any, where: str, hints: Mapping[str, Mapping[str, str]] | None = None
) -> None:
    """Check that every user target ``case`` names is allowed (before running
    it); ``hints`` (a corpus entry's ``targets``) supply the specs for the fix."""
    hints = hints or {}
    for i, layer in enumerate(case.stack.layers):
        if layer.family == "user":
            name = layer.behaviour
            middleware_target(
                name,
                f"{where}: field 'case.stack.layers[{i}].kind'",
                hints.get("middleware", {}).get(name, ""),
            )
    if case.app:
        app_target(
            case.app,
            f"{where}: field 'case.app'",
            hints.get("app", {}).get(case.app, ""),
        )


# Specs ------------------------------------------------------------------------


async def _probe_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the probe app is never called")  # pragma: no cover


def _checked(target: MiddlewareTarget, where: str) -> MiddlewareTarget:
    if not _NAME.match(target.name):
        raise UsageError(
            f"{where}: the name {target.name!r} must be a Python identifier; "
            "name it with NAME=module:Class"
        )
    if not callable(target.factory):
        raise UsageError(
            f"{where}: {target.factory!r} is not callable; name a middleware class"
        )
    try:
        made = target.wrap(_probe_app)
    except Exception as exc:
        raise UsageError(
            f"{where}: {getattr(target.factory, '__name__', target.factory)}"
            f"(app, ...) rejected its arguments: {type(exc).__name__}: {exc}; fix "
            "the arguments in the spec"
        ) from None
    problem = asgi_problem(made)
    if problem is not None:
        raise UsageError(
            f"{where}: {getattr(target.factory, '__name__', target.factory)}(app) "
            f"returned {short(made)}, which {problem}, so it is not an ASGI app; "
            "name a middleware class whose instances are ASGI apps "
            "(async def __call__(self, scope, receive, send))"
        )
    return target


def load_middleware(
    spec: str, where: str = "--middleware", declared: Declaration = NOTHING
) -> MiddlewareTarget:
    """Import and check one middleware spec (``[NAME=]module:Class[(args)]``,
    perhaps ending with ``; key=literal, ...`` declarations), with what it
    ``declared`` (in a table or a dict form: not both)."""
    name, module, attr, args, kwargs = parse_spec(spec, where, declarations=True)
    given = spec_declarations(spec, where)
    where = f"{where} {spec!r}"
    if given:
        if declared != NOTHING:
            raise UsageError(
                f"{where}: the layer is declared twice, in the spec and in "
                f"{declared.where or 'its table'}; keep one of them"
            )
        declared = declaration(given, where)
    factory = import_object(module, attr, where)
    target = MiddlewareTarget(
        name=name or attr.rpartition(".")[2],
        factory=factory,
        args=args,
        kwargs=kwargs,
        spec=spec.strip(),
        declared=declared,
    )
    return _checked(target, where)


def middleware_from_object(obj: Any, name: str | None = None) -> MiddlewareTarget:
    """A target from a Python object: a class, ``(cls, {kwargs})``, or a
    ``starlette.middleware.Middleware``; ``name`` defaults to the class name."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    factory = obj
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], Mapping):
        factory, kwargs = obj[0], dict(obj[1])
    elif hasattr(obj, "cls") and (hasattr(obj, "options") or hasattr(obj, "kwargs")):
        factory = obj.cls
        args = tuple(getattr(obj, "args", ()))
        kwargs = dict(getattr(obj, "kwargs", None) or getattr(obj, "options", {}))
    qual = getattr(factory, "__qualname__", "")
    spec = ""
    if qual and "<locals>" not in qual and _literal(args, kwargs):
        call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        spec = f"{factory.__module__}:{qual}" + (f"({call})" if call else "")
        if name:
            spec = f"{name}={spec}"
    target = MiddlewareTarget(
        name=name or str(getattr(factory, "__name__", "middleware")),
        factory=factory,
        args=args,
        kwargs=kwargs,
        spec=spec,
    )
    return _checked(target, f"middleware {obj!r}")


def _literal(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    try:
        return all(ast.literal_eval(repr(v)) == v for v in (*args, *kwargs.values()))
    except (ValueError, SyntaxError):
        return False


def load_app(
    spec: str,
    where: str = "--app",
    routes: Iterable[str] = (),
    lifespan: bool = True,
    exclude: Iterable[str] = (),
) -> AppTarget:
    """Import an app spec (``[NAME=]module:attr``) and discover its routes."""
    name, module, attr, args, kwargs = parse_spec(spec, where)
    where = f"{where} {spec!r}"
    app = import_object(module, attr, where)
    if calls(spec):
        app = call_factory(app, args, kwargs, f"{module}:{attr}", where)
    elif (problem := asgi_problem(app)) is not None and "factory" in problem:
        raise UsageError(
            f"{where}: {module}:{attr} {problem}, so it looks like an app factory, "
            f"not an app: call it with --app '{module}:{attr}()' (literal "
            "arguments allowed), or name the app instance"
        )
    return app_from_object(
        app,
        name=name or "app",
        routes=routes,
        lifespan=lifespan,
        spec=spec.strip(),
        exclude=exclude,
    )


def app_from_object(
    app: Any,
    *,
    name: str = "app",
    routes: Iterable[str] = (),
    lifespan: bool = True,
    spec: str = "",
    exclude: Iterable[str] = (),
) -> AppTarget:
    """An app target from an ASGI callable; ``routes`` (``"METHOD /path"``) are
    added to those discovered from a Starlette or FastAPI router, ``exclude``
    (``"[METHOD] /path"``) removes found ones (see `app_routes`)."""
    where = f"app {spec or name!r}"
    if not _NAME.match(name):
        raise UsageError(f"{where}: the name {name!r} must be a Python identifier")
    problem = asgi_problem(app)
    if problem is not None:
        raise UsageError(
            f"{where}: {short(app)} {problem}, so it is not an ASGI app; name the "
            "app instance (e.g. app = Starlette(...)), not its class or module, or "
            "an async def app(scope, receive, send)"
        )
    every, notes = app_routes(app, routes, exclude, where)
    return AppTarget(
        name=name, app=app, routes=every, spec=spec, lifespan=lifespan, notes=notes
    )


def used_by(case: Any) -> dict[str, dict[str, str]]:
    """The user targets ``case`` names, with their import specs (for the corpus
    entry and the replay command; a spec is empty for an object defined where
    it cannot be imported from)."""
    out: dict[str, dict[str, str]] = {}
    registry, apps = {**_MIDDLEWARE, **_middleware()}, {**_APPS, **_apps()}
    for layer in case.stack.layers:
        if layer.family == "user" and layer.behaviour in registry:
            target = registry[layer.behaviour]
            out.setdefault("middleware", {})[target.name] = target.spec
    if case.app and case.app in apps:
        out["app"] = {case.app: apps[case.app].spec}
    return out


def declarations(case: Any) -> tuple[Declaration, ...]:
    """What each layer of ``case`` declares (a built-in layer, or a user layer
    this run does not know, as when judging a recorded outcome: `NOTHING`)."""
    known = {**_MIDDLEWARE, **_middleware()}
    return tuple(
        known[la.behaviour].declared
        if la.family == "user" and la.behaviour in known
        else NOTHING
        for la in case.stack.layers
    )
