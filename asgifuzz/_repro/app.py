"""A reproducer's app: its middleware classes, its endpoint, and ``make_app()``
that builds them in the case's stack mode."""

from __future__ import annotations

from asgifuzz._repro.encode import encoder_helpers
from asgifuzz._repro.endpoint import endpoint_source
from asgifuzz._repro.middleware import LAYER_TASK, STARLETTE, class_names, layer_source
from asgifuzz._repro.render import lit, render
from asgifuzz.models import Case, Layer
from asgifuzz.models._parts import PASSTHROUGH_KINDS


def _call(func: str, args: list[str], column: int, indent: int) -> str:
    """``func(args)`` on one line, or one argument a line if that is too long."""
    line = f"{func}({', '.join(args)})"
    if column + len(line) <= 88:
        return line
    pad = " " * (indent + 4)
    return f"{func}(\n" + "".join(f"{pad}{a},\n" for a in args) + " " * indent + ")"


def _app_factory(
    case: Case, layers: list[tuple[str, Layer]], watch: bool, name: str
) -> str:
    """A function ``name()`` that builds the app in the case's stack mode."""
    doc = (
        "The same app without its pass-through layers, which should change nothing."
        if "without" in name
        else "The app of the failing case."
    )
    method = case.request.method
    lines = [f"def {name}() -> ASGIApp:", f'    """{doc}"""']
    lines.append(f'    routes = [Route("/", endpoint, methods=["{method}"])]')
    stack = []  # (class, constructor arguments), outermost first
    for i, (cls, layer) in enumerate(layers):
        stack += [("Watch", [f'name="into layer {i} ({cls})"'])] if watch else []
        options = STARLETTE[layer.behaviour][1] if layer.family == "starlette" else []
        values = {  # as `starlette_middleware` reads them; quoted, never pasted
            "minimum_size": int(layer.options.get("minimum_size", 0)),
            "origin": lit(str(layer.options.get("origin", "*"))),
            "host": lit(str(layer.options.get("host", "testserver"))),
        }
        stack.append((cls, [option.format(**values) for option in options]))
    if case.stack.mode == "starlette":
        stack += [("Watch", ['name="into ExceptionMiddleware"'])] if watch else []
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
            '    return Watch(app, name="into ServerErrorMiddleware")',
        ]
        return "\n".join(lines)
    stack += [("Watch", ['name="into Starlette"'])] if watch else []
    if not stack:
        return "\n".join([*lines, "    return Starlette(routes=routes)"])
    lines.append("    app: ASGIApp = Starlette(routes=routes)")
    lines += (
        ["    # Wrapped by hand, innermost first: Outer(Inner(app))."] if layers else []
    )
    *inner, outer = reversed(stack)
    lines += [f"    app = {_call(c, ['app', *a], 10, 4)}" for c, a in inner]
    return "\n".join(
        [*lines, f"    return {_call(outer[0], ['app', *outer[1]], 11, 4)}"]
    )


def app_source(case: Case, obs: set[str], without_passthrough: bool) -> str:
    """The app's middleware classes, endpoint and ``make_app()`` (and, with
    ``without_passthrough``, ``make_app_without_passthrough()``)."""
    names, classes = class_names(case.stack.layers)
    parts = []
    if any(la.behaviour == "background" for la in classes.values()):
        parts.append(render(LAYER_TASK, {f"see_{o}" for o in obs}))
    parts += encoder_helpers(list(classes.values()))
    parts += [layer_source(name, layer, obs) for name, layer in classes.items()]
    parts.append(endpoint_source(case.endpoint, obs))
    stack = list(zip(names, case.stack.layers, strict=True))
    parts.append(_app_factory(case, stack, "received" in obs, "make_app"))
    if without_passthrough:
        kept = [(n, la) for n, la in stack if la.kind not in PASSTHROUGH_KINDS]
        parts.append(_app_factory(case, kept, False, "make_app_without_passthrough"))
    return "\n\n\n".join(parts)
