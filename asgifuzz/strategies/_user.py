"""Strategies for the user's own code: their middleware in random stacks, their app.

The user's objects are allowed (registered by name, see `asgifuzz._targets.specs`)
when the strategy is made; what the strategy draws is still plain data that
names them (``user.<name>`` layers, ``Case.app``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from asgifuzz._errors import UsageError
from asgifuzz._targets import specs
from asgifuzz._targets.declarations import NOTHING, declaration
from asgifuzz._targets.extras import parse_extras
from asgifuzz._targets.routes import Param, fill, params
from asgifuzz.models import LAYER_KINDS, Case, Layer, Request, Stack
from asgifuzz.models._parts import STACK_MODES
from asgifuzz.models._websocket import WS_LAYER_KINDS
from asgifuzz.strategies._parts import check_kinds, layers, request_contents
from asgifuzz.strategies._vocabulary import with_user_headers

#: How one user middleware may be given: an import spec, a class, ``(cls, kwargs)``,
#: a ``starlette.middleware.Middleware`` or an allowed `MiddlewareTarget`; or a
#: dict of one of those as ``"spec"`` and what the layer declares
#: (`asgifuzz._targets.declarations`: ``{"spec": Gz, "encodes": "gzip"}``).
MiddlewareLike = Any


def allow_middleware(
    middleware: Iterable[MiddlewareLike] | Mapping[str, MiddlewareLike],
) -> list[str]:
    """Allow each middleware (named by class, or by the mapping's keys) and
    return their layer kinds, ``user.<name>``; a dict entry declares what its
    layer does (``{"spec": Gz, "encodes": "gzip"}``)."""
    items: list[tuple[str | None, MiddlewareLike]]
    if isinstance(middleware, Mapping):
        items = list(middleware.items())
    else:
        items = [(None, m) for m in middleware]
    kinds = []
    try:
        for name, given in items:
            obj, declared = given, None
            if isinstance(given, Mapping):
                where = f"middleware[{name!r}]" if name else f"middleware {given!r}"
                obj, declared = given.get("spec"), declaration(given, where)
                if obj is None:
                    raise UsageError(f"{where}: no 'spec'; name the middleware")
            if isinstance(obj, specs.MiddlewareTarget):
                target = obj
            elif isinstance(obj, str):
                spec = obj if name is None else f"{name}={obj}"
                target = specs.load_middleware(spec, "middleware", declared or NOTHING)
                declared = None  # in the target already, from the dict or the spec
            else:
                target = specs.middleware_from_object(obj, name)
            if declared is not None:
                target = replace(target, declared=declared)
            kinds.append(specs.allow_middleware(target).kind)
    except UsageError as exc:
        raise InvalidArgument(str(exc)) from None
    if not kinds:
        raise InvalidArgument("middleware=[] names no middleware; pass at least one")
    return list(dict.fromkeys(kinds))


@st.composite
def _mixed(
    draw: st.DrawFn,
    user_kinds: Sequence[str],
    builtin_kinds: Sequence[str],
    max_builtin: int,
    modes: Sequence[str],
) -> Stack:
    users = draw(st.lists(st.sampled_from(user_kinds), min_size=1, max_size=3))
    stack = [Layer(kind=k) for k in users]
    if builtin_kinds:
        for extra in draw(st.lists(layers(builtin_kinds), max_size=max_builtin)):
            stack.insert(draw(st.integers(0, len(stack))), extra)
    return Stack(layers=tuple(stack), mode=draw(st.sampled_from(modes)))


def user_stacks(
    middleware: Iterable[MiddlewareLike] | Mapping[str, MiddlewareLike],
    *,
    builtin: bool | Sequence[str] = True,
    max_builtin: int = 3,
) -> st.SearchStrategy[Stack]:
    """Stacks with one to three of the user's ``middleware`` (allowed by this
    call) and up to ``max_builtin`` built-in model layers in random positions.

    ``builtin`` is True (every built-in kind), False (the user's layers only) or
    a list of `asgifuzz.models.LAYER_KINDS`. Shrinks toward one user layer alone.
    """
    kinds = tuple(allow_middleware(middleware))
    chosen: tuple[str, ...] = ()
    if builtin is True:
        chosen = tuple(LAYER_KINDS)
    elif builtin:
        chosen = check_kinds("builtin", builtin, (*LAYER_KINDS, *WS_LAYER_KINDS))
    return _mixed(kinds, chosen, max_builtin, STACK_MODES)


#: The characters of a drawn ``str``/``path`` parameter's segments: safe in a
#: URL path, so ``path`` and ``raw_path`` agree, and never ``.``/``..``.
_SEGMENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=12,
)
_REGEX_CHARS = st.characters(
    min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"
)


def _int_range(param: Param) -> tuple[int, int]:
    lo = param.lo if param.lo is not None else min(0, param.hi or 0)
    return lo, param.hi if param.hi is not None else lo + 10**9


def param_values(param: Param) -> st.SearchStrategy[str]:
    """Valid values of one path parameter (see `asgifuzz._targets.routes`);
    each shrinks toward its simplest (``0``, ``0.0``, ``a``, the first choice)."""
    if param.kind == "int":
        return st.integers(*_int_range(param)).map(str)
    if param.kind == "float":
        whole = st.integers(*_int_range(param))
        if param.hi is not None:  # n.0 stays within integer bounds
            return whole.map(lambda n: f"{n}.0")
        return st.tuples(whole, st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]}")
    if param.kind == "uuid":
        return st.uuids().map(str)
    if param.kind == "path":
        return st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)
    if param.kind == "choice" and param.choices:
        return st.sampled_from(param.choices)
    if param.kind == "regex":
        return st.from_regex(param.regex, fullmatch=True, alphabet=_REGEX_CHARS)
    return _SEGMENT


@st.composite
def route_paths(draw: st.DrawFn, routes: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """A ``(method, path)``: one of ``routes`` (``(method, template)`` pairs)
    with its path parameters filled with valid values."""
    method, template = draw(st.sampled_from(list(routes)))
    values = {p.name: draw(param_values(p)) for p in params(template)}
    return method, fill(template, values)


def app_requests(
    routes: Sequence[tuple[str, str]], *, max_chunks: int = 4
) -> st.SearchStrategy[Request]:
    """Requests over ``routes`` (``(method, path template)`` pairs, path
    parameters filled with valid values) with a query, the vocabulary's headers
    and bodies (`asgifuzz.strategies._parts.request_contents`) and a scheme."""
    if not routes:
        raise InvalidArgument("routes=[] names no route; pass (method, path) pairs")
    return st.builds(
        lambda route, query, contents, scheme: Request(
            route[0], route[1], query, contents[0], contents[1], scheme
        ),
        route_paths(routes),
        # In the order of the fields, as before the vocabulary: shrinking
        # within a budget (of a hang) gets as far as it did.
        st.sampled_from(("", "q=1")),
        request_contents(max_chunks=max_chunks),
        st.sampled_from(("http", "https")),
    )


def allow_app(
    app: Any,
    *,
    routes: Iterable[str] = (),
    lifespan: bool = True,
    exclude_routes: Iterable[str] = (),
) -> specs.AppTarget:
    """Allow ``app`` (an ASGI app, an import spec or an `AppTarget`);
    ``exclude_routes`` (``"[METHOD] /path"``) leaves found routes out."""
    try:
        if isinstance(app, specs.AppTarget):
            target = app
        elif isinstance(app, str):
            target = specs.load_app(app, "app", routes, lifespan, exclude_routes)
        else:
            target = specs.app_from_object(
                app, routes=routes, lifespan=lifespan, exclude=exclude_routes
            )
    except UsageError as exc:
        raise InvalidArgument(str(exc)) from None
    return specs.allow_app(target)


def user_requests(requests: Any) -> st.SearchStrategy[Request]:
    """The user's request strategy: a Hypothesis strategy of `Request`, a function
    returning one, or the import spec of either (``"mypkg.fuzz:requests"``,
    with literal arguments as in other specs: ``"mypkg.fuzz:requests(n=2)"``).
    Each drawn value is checked to be a `Request`."""
    label, obj = getattr(requests, "__qualname__", repr(requests)), requests
    if isinstance(requests, str):
        _, module, attr, args, kwargs = specs.parse_spec(requests, "requests")
        label, obj = requests, specs.import_object(module, attr, "requests")
        if args or kwargs:
            obj = obj(*args, **kwargs)
    if not isinstance(obj, st.SearchStrategy | type) and callable(obj):
        try:
            obj = obj()
        except TypeError as exc:
            raise UsageError(
                f"requests {label}: calling it with no arguments failed ({exc}); "
                "name a strategy, or a function that needs no arguments"
            ) from None
    if not isinstance(obj, st.SearchStrategy):
        raise UsageError(
            f"requests {label}: is {type(obj).__name__}, not a Hypothesis strategy; "
            "name a strategy of asgifuzz.models.Request (or a function returning "
            "one), e.g. requests = st.builds(Request, method=st.just('POST'))"
        )
    return obj.map(partial(_a_request, label))


def _a_request(label: str, value: object) -> Request:
    if not isinstance(value, Request):
        raise UsageError(
            f"requests {label}: drew {type(value).__name__} {value!r:.60}; a request "
            "strategy must draw asgifuzz.models.Request values"
        )
    return value


def extras_of(
    headers: Sequence[str | tuple[str, str]], cookies: Sequence[str]
) -> Callable[[Request], Request]:
    """What adds the user's ``headers`` and ``cookies`` to a drawn request
    (see `asgifuzz.strategies._vocabulary.with_user_headers`)."""
    extra, jar = _parsed(headers, cookies)
    return partial(with_user_headers, extra=extra, cookies=jar)


def _parsed(
    headers: Sequence[str | tuple[str, str]], cookies: Sequence[str]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    texts = [h if isinstance(h, str) else f"{h[0]}: {h[1]}" for h in headers]
    try:
        return parse_extras(texts, cookies)
    except UsageError as exc:
        raise InvalidArgument(str(exc)) from None


def case_extras(
    headers: Sequence[str | tuple[str, str]], cookies: Sequence[str]
) -> Callable[[Case], Case]:
    """What adds the user's ``headers`` and ``cookies`` to a case of another
    scope, as `extras_of` does to a request: a websocket case's handshake, a
    lifespan case's request."""
    extra, jar = _parsed(headers, cookies)

    def added(case: Case) -> Case:
        if case.scope != "websocket":
            return replace(case, request=with_user_headers(case.request, extra, jar))
        handshake = with_user_headers(case.websocket.handshake, extra, jar)
        return replace(case, websocket=replace(case.websocket, handshake=handshake))

    return added


def with_extras(
    requests: st.SearchStrategy[Request],
    headers: Sequence[str | tuple[str, str]],
    cookies: Sequence[str],
) -> st.SearchStrategy[Request]:
    """``requests`` with the user's ``headers`` and ``cookies`` added to each
    (see `extras_of`)."""
    return requests.map(extras_of(headers, cookies))
