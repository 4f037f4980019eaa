"""The user's layers in a reproducer: imported by their specs, where a script
can hold them (a websocket case, a lifespan session), else refused by name."""

from __future__ import annotations

import re
from collections.abc import Mapping

from asgifuzz.models import Case

#: A spec a script can import: ``module.path:Name``, no constructor arguments.
_PLAIN_SPEC = re.compile(r"(?:\w+=)?([A-Za-z_][\w.]*):([A-Za-z_]\w*)\s*\Z")


def user_imports(
    case: Case, specs: Mapping[str, str], app_spec: str = "", *, any_scope: bool = False
) -> list[str]:
    """The import line of each user layer of ``case`` (and of its app, for a
    websocket case: ``app_spec``); with ``any_scope``, of an HTTP case's layers
    too (for a check that reads only what crossed the boundaries).

    Raises:
        ValueError: the case runs the user's app but for a websocket case with
            its spec, or a user layer of an HTTP case, or one whose spec is
            unknown or takes arguments (the message names the field and why).
    """
    lines = []
    if case.app:
        found = _PLAIN_SPEC.match(app_spec)
        if case.scope != "websocket" or found is None:
            raise ValueError(
                f"field 'app' is {case.app!r}: the case runs your own app, which a "
                "standalone script holds only for a websocket case, by a spec of "
                f"the form module:app (it has {app_spec or 'none'!r}); replay it "
                "with asgifuzz replay (and the --app option the entry names)"
            )
        lines.append(f"from {found.group(1)} import {found.group(2)} as user_app")
    for i, layer in enumerate(case.stack.layers):
        if layer.family != "user":
            continue
        name = layer.kind.removeprefix("user.")
        where = f"field 'stack.layers[{i}].kind' is {layer.kind!r}"
        if case.scope == "http" and case.lifespan is None and not any_scope:
            raise ValueError(
                f"{where}: the case runs your own middleware, which a standalone "
                "script of an HTTP case cannot hold; replay it with asgifuzz replay "
                "(and the --middleware options the corpus entry names), or shrink "
                "it to Starlette code by hand"
            )
        found = _PLAIN_SPEC.match(specs.get(name, ""))
        if found is None:
            raise ValueError(
                f"{where}: the script imports your middleware by its spec, and "
                f"{specs.get(name) or 'none'!r} is not one of the form module:Class "
                "(no constructor arguments); save the case with that spec "
                "(fuzz --corpus records it), or write the import by hand"
            )
        module, attr = found.groups()
        alias = "" if attr == name else f" as {name}"
        lines.append(f"from {module} import {attr}{alias}")
    return lines


def with_user(block: str, user: list[str]) -> str:
    """The imports ``block`` (standard library, blank line, the others) with the
    user's import lines sorted in among the others, as isort does."""
    if not user:
        return block
    std, _, others = block.rpartition("\n\n")
    # One statement each: a wrapped from-import whole, or one line.
    statements = re.findall(
        r"^(?:from \S+ import \((?:\n    .*)*\n\)|.+)$", others, re.M
    )
    statements.sort(key=lambda x: (x.startswith("from "), x.split()[1]))
    merged = sorted(
        [*statements, *user], key=lambda x: (x.startswith("from "), x.split()[1])
    )
    return f"{std}\n\n" + "\n".join(merged)
