"""A reproducer's app: its middleware classes, its endpoint, and ``make_app()``
that builds them in the case's stack mode."""

from __future__ import annotations

from collections.abc import Callable

from asgifuzz._repro.encode import encoder_helpers
from asgifuzz._repro.endpoint import endpoint_source
from asgifuzz._repro.middleware import LAYER_TASK, STARLETTE, class_names, layer_source
from asgifuzz._repro.render import lit, render
from asgifuzz._repro.ws_app import ws_endpoint_source, ws_layer_source
from asgifuzz.models import Case, Layer
from asgifuzz.models._parts import PASSTHROUGH_KINDS


def _call(func: str, args: list[str], column: int, indent: int) -> str:
    """``func(args)`` on one line, or one argument a line if that is too long."""
    line = f"{func}({', '.join(args)})"
    if column + len(line) <= 88:
        return line
    pad = " " * (indent + 4)
    return f"{func}(\n" + "".join(f"{pad}{a},\n" for a in args) + " " * indent + ")"


def _routes(case: Case, watcher: str) -> list[str]:
    """The lines that make the app's one route (and watch its endpoint)."""
    if case.scope != "websocket":
        method = case.request.method
        lines = [f'    routes = [Route("/", endpoint, methods=["{method}"])]']
    else:
        path = lit(case.websocket.handshake.path)
        lines = [f"    routes = [WebSocketRoute({path}, endpoint)]"]
    if watcher:
        lines.append(
            f'    routes[0].app = {watcher}(routes[0].app, name="into the endpoint")'
        )
    return lines


def _app_factory(
    case: Case,
    layers: list[tuple[str, Layer]],
    watch: bool,
    name: str,
    watcher: str = "Watch",
) -> str:
    """A function ``name()`` that builds the app in the case's stack mode."""
    doc = (
        "The same app without its pass-through layers, which should change nothing."
        if "without" in name
        else "The app of the failing case."
    )
    lines = [f"def {name}() -> ASGIApp:", f'    """{doc}"""']
    base = "user_app"  # the user's app, imported (`user_imports`)
    if not case.app:
        base = "Starlette(routes=routes)"
        # A Tap watches the endpoint too (the websocket checks, and X3, read it).
        tapped = case.scope == "websocket" or watcher == "Tap"
        lines += _routes(case, watcher if watch and tapped else "")
    stack = []  # (class, constructor arguments), outermost first
    for i, (cls, layer) in enumerate(layers):
        stack += [(watcher, [f'name="into layer {i} ({cls})"'])] if watch else []
        options = STARLETTE[layer.behaviour][1] if layer.family == "starlette" else []
        values = {  # as `starlette_middleware` reads them; quoted, never pasted
            "minimum_size": int(layer.options.get("minimum_size", 0)),
            "origin": lit(str(layer.options.get("origin", "*"))),
            "host": lit(str(layer.options.get("host", "testserver"))),
        }
        stack.append((cls, [option.format(**values) for option in options]))
    if case.stack.mode == "starlette" and not case.app:
        stack += [(watcher, ['name="into ExceptionMiddleware"'])] if watch else []
        entries = "".join(
            f"        {_call('Middleware', [c, *a], 8, 8)},\n" for c, a in stack
        )
        lines.append(
            f"    middleware = [\n{entries}    ]" if stack else "    middleware = []"
        )
        app = "Starlette(routes=routes, middleware=middleware)"
        if not watch:
            return "\n".join([*lines, f"    return {app}"])
        lines += [
            f"    app = {app}",
            f'    return {watcher}(app, name="into ServerErrorMiddleware")',
        ]
        return "\n".join(lines)
    inside = "the app" if case.app else "Starlette"
    stack += [(watcher, [f'name="into {inside}"'])] if watch else []
    if not stack:
        return "\n".join([*lines, f"    return {base}"])
    lines.append(f"    app: ASGIApp = {base}")
    lines += (
        ["    # Wrapped by hand, innermost first: Outer(Inner(app))."] if layers else []
    )
    *inner, outer = reversed(stack)
    lines += [f"    app = {_call(c, ['app', *a], 10, 4)}" for c, a in inner]
    return "\n".join(
        [*lines, f"    return {_call(outer[0], ['app', *outer[1]], 11, 4)}"]
    )


def app_classes(
    case: Case, obs: set[str], lifespan_layer: Callable[[str, Layer], str] | None = None
) -> tuple[list[str], list[str]]:
    """A class name per layer, and the sources of the classes to write (a
    ``lifespan.*`` layer's by ``lifespan_layer``, in a lifespan session)."""
    names, classes = class_names(case.stack.layers)
    parts = []
    if any(la.behaviour == "background" for la in classes.values()):
        parts.append(render(LAYER_TASK, {f"see_{o}" for o in obs}))
    parts += encoder_helpers(list(classes.values()))
    ws, session = case.scope == "websocket", case.lifespan is not None
    for name, layer in classes.items():
        if layer.family == "ws":
            parts.append(ws_layer_source(name, layer))
        elif layer.family == "lifespan" and lifespan_layer is not None:
            parts.append(lifespan_layer(name, layer))
        elif (ws and layer.family == "asgi") or layer.family == "lifespan":
            # The pure-ASGI models pass a websocket scope straight through, and
            # the lifespan ones every other scope.
            parts.append(layer_source(name, Layer("asgi.passthrough"), obs))
        else:
            parts.append(layer_source(name, layer, obs, guard=session))
    return names, parts


def app_source(case: Case, obs: set[str], without_passthrough: bool) -> str:
    """The app's middleware classes, endpoint and ``make_app()`` (and, with
    ``without_passthrough``, ``make_app_without_passthrough()``)."""
    names, parts = app_classes(case, obs)
    if case.scope == "websocket":
        parts.append(ws_endpoint_source(case.websocket.endpoint, obs))
    else:
        parts.append(endpoint_source(case.endpoint, obs))
    stack = list(zip(names, case.stack.layers, strict=True))
    watcher = "Tap" if "taps" in obs else "Watch"
    watch = bool({"received", "taps"} & obs)
    parts.append(_app_factory(case, stack, watch, "make_app", watcher))
    if without_passthrough:
        kept = [(n, la) for n, la in stack if la.kind not in PASSTHROUGH_KINDS]
        parts.append(_app_factory(case, kept, False, "make_app_without_passthrough"))
    return "\n\n\n".join(parts)
