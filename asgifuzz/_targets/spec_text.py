"""The text of an import spec, ``[NAME=]module.path:attr[(literal args)]``, split
into its parts: the arguments are Python literals, read with `ast.literal_eval`,
never evaluated. An object as an argument is refused with the way to give it:
a factory in the user's code (`parse_spec`'s error shows it).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from asgifuzz._errors import UsageError

_SPEC = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_]\w*)\s*=\s*)?"
    r"(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)"
    r"\s*(?:\((?P<args>.*)\))?\s*\Z",
    re.DOTALL,
)
_FIX_MW = (
    "write it as module.path:Class or module.path:Class(arg=value, ...) with "
    "literal arguments, e.g. mypkg.auth:Auth(secret='x')"
)


def parse_spec(
    spec: str, where: str
) -> tuple[str | None, str, str, tuple[Any, ...], dict[str, Any]]:
    """Split ``[NAME=]module:attr[(args)]`` into its parts; literals only."""
    match = _SPEC.match(spec)
    if match is None:
        raise UsageError(f"{where} {spec!r} is not an import spec; {_FIX_MW}")
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if match["args"] is not None and match["args"].strip():
        source = f"f({match['args']})"
        try:
            call = ast.parse(source, mode="eval").body
        except SyntaxError as exc:
            raise UsageError(
                f"{where} {spec!r}: the arguments are not Python literals ({exc}); "
                f"{_FIX_MW}"
            ) from None
        assert isinstance(call, ast.Call)
        nodes = [*call.args, *call.keywords]
        for node in nodes:
            value = node.value if isinstance(node, ast.keyword | ast.Starred) else node
            try:
                if isinstance(node, ast.Starred) or (
                    isinstance(node, ast.keyword) and node.arg is None
                ):
                    raise ValueError
                ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                text = ast.get_source_segment(source, node) or "?"
                raise UsageError(
                    _not_literal(where, spec, text, match["module"], match["attr"])
                ) from None
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}
    return match["name"], match["module"], match["attr"], args, kwargs


def _not_literal(where: str, spec: str, argument: str, module: str, attr: str) -> str:
    """The error for a spec argument that is not a literal, with the factory
    pattern (objects are made by the user's code, never by evaluating a spec)."""
    match = _SPEC.match(spec)
    given = match["args"].strip() if match is not None and match["args"] else "..."
    name = attr.rpartition(".")[2]
    option = where.split()[0] if where.startswith("--") else f"--{where.split()[0]}"
    if "app" in option:
        made = f"def fuzz_app(): return {name}({given})"
        use = f"{option} 'fuzz_targets:fuzz_app()'"
    else:
        made = f"def fuzzed(app): return {name}(app, {given})"
        use = f"{option} fuzz_targets:fuzzed"
    return (
        f"{where} {spec!r}: the argument {argument} is not a Python literal; specs "
        "are never evaluated, only literals (strings, numbers, True/False/None, "
        "lists, dicts) are read. For objects (a tracer provider, a client, "
        "plugins), write a factory that makes them, e.g.\n"
        f"    # fuzz_targets.py, beside pyproject.toml: from {module} import {name}\n"
        f"    {made}\n"
        f"and pass {use}"
    )
