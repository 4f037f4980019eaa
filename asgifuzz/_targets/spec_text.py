"""The text of an import spec, ``[NAME=]module.path:attr[(literal args)]``, split
into its parts: the arguments are Python literals, read with `ast.literal_eval`,
never evaluated. An object as an argument is refused with the way to give it:
a factory in the user's code (`parse_spec`'s error shows it).

A middleware spec may end with what the layer declares, after a ``;`` outside
the arguments: ``Gz=mypkg.mw:Compress(level=5); encodes='gzip', buffers=True``
(`spec_declarations`; the keys of `asgifuzz._targets.declarations`, literals
only, several separated by ``,`` or ``;``).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
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


def split_declared(spec: str) -> tuple[str, str]:
    """``spec`` as the import spec and the text of its declarations: what
    follows the first ``;`` outside brackets and strings (``""`` if none)."""
    if ";" not in spec:
        return spec, ""
    lines = spec.splitlines(keepends=True)
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(spec).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == ";" and depth == 0:
                row, col = token.start
                at = sum(len(line) for line in lines[: row - 1]) + col
                return spec[:at], spec[at + 1 :]
    except (tokenize.TokenError, SyntaxError):
        pass  # not Python tokens: parse_spec says what is wrong with the spec
    return spec, ""


_FIX_DECL = (
    "write them as key=literal after a ';', e.g. "
    "'mypkg.mw:Gz(level=5); encodes=\"gzip\", buffers=True'"
)


def spec_declarations(spec: str, where: str) -> dict[str, Any]:
    """The declarations a middleware spec ends with (``; key=literal, ...``), as
    a dict for `asgifuzz._targets.declarations.declaration`; literals only,
    never evaluated. `UsageError` naming the spec, the item and the fix."""
    _, text = split_declared(spec)
    found: dict[str, Any] = {}
    for piece in split_pieces(text):
        source = f"f({piece})"
        try:
            call = ast.parse(source, mode="eval").body
        except SyntaxError:
            raise UsageError(
                f"{where} {spec!r}: the declaration {piece.strip()!r} is not "
                f"key=literal; {_FIX_DECL}"
            ) from None
        assert isinstance(call, ast.Call)
        if call.args or any(k.arg is None for k in call.keywords):
            raise UsageError(
                f"{where} {spec!r}: the declaration {piece.strip()!r} is not "
                f"key=literal; {_FIX_DECL}"
            )
        for keyword in call.keywords:
            key = str(keyword.arg)
            try:
                value = ast.literal_eval(keyword.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                text = ast.get_source_segment(source, keyword) or key
                raise UsageError(
                    f"{where} {spec!r}: the declaration {text} is not a Python "
                    "literal (specs are never evaluated); quote strings and write "
                    f"True/False, e.g. {key}='gzip' or buffers=True"
                ) from None
            if key in found or key == "spec":
                fix = (
                    "is given twice; give each key once"
                    if key in found
                    else "is not a declaration (the spec is the layer); leave it out"
                )
                raise UsageError(f"{where} {spec!r}: {key!r} {fix}")
            found[key] = value
    return found


def split_pieces(text: str) -> list[str]:
    """The ``;``-separated pieces of a declarations' text (``;`` outside
    brackets and strings), empty ones left out."""
    pieces = []
    while text.strip():
        head, text = split_declared(text)
        if head.strip():
            pieces.append(head)
    return pieces


def parse_spec(
    spec: str, where: str, declarations: bool = False
) -> tuple[str | None, str, str, tuple[Any, ...], dict[str, Any]]:
    """Split ``[NAME=]module:attr[(args)]`` into its parts; literals only. With
    ``declarations``, a ``; key=literal`` tail (a middleware's declarations,
    `spec_declarations`) is allowed and left out; without, it is refused."""
    base, declared = split_declared(spec)
    if declared.strip() and not declarations:
        raise UsageError(
            f"{where} {spec!r}: declarations (after ';') are for a middleware "
            "spec only; leave them out here"
        )
    spec = base
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
