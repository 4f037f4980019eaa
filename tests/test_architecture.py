"""The package's shape: no import cycles, small modules, private names kept private.

Read from the source with `ast` (nothing is imported), so a cycle that only a
function-level or a type-checking import makes is caught too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asgifuzz"
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    """One ``import``/``from ... import`` of asgifuzz's own code."""

    module: str  # the importing module
    target: str  # the imported module
    names: tuple[str, ...]  # for ``from X import a, b``: a, b
    line: int
    in_function: bool
    commented: bool  # a comment on the line or on the one above says why


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str) -> Iterator[Import]:
    path = MODULES[module]
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)

    def commented(lineno: int) -> bool:
        here = lines[lineno - 1]
        above = lines[lineno - 2].strip() if lineno > 1 else ""
        return "#" in here or above.startswith("#")

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "asgifuzz":
                        yield Import(
                            module,
                            alias.name,
                            (),
                            child.lineno,
                            in_function,
                            commented(child.lineno),
                        )
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, child)
                if target.split(".")[0] == "asgifuzz":
                    yield Import(
                        module,
                        target,
                        tuple(a.name for a in child.names),
                        child.lineno,
                        in_function,
                        commented(child.lineno),
                    )
            yield from visit(child, inner)

    yield from visit(tree, False)


IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _edges() -> dict[str, set[str]]:
    """Module -> the asgifuzz modules it imports (``from pkg import mod`` is mod)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        targets = [
            f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in MODULES
        ]
        if len(targets) < len(imp.names) or not imp.names:
            targets.append(imp.target)
        for target in targets:
            # Importing a submodule runs its package's __init__ too, but those
            # are light (docstrings, or lazy __getattr__): only the module counts.
            if target in MODULES and target != imp.module:
                graph[imp.module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_edges())
    assert not cycles, "import cycles inside asgifuzz: " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


#: The packages from the top of the import graph down: each may import only the
#: ones below it (README, "Architecture").
LAYERS = (
    "asgifuzz.__main__",
    "asgifuzz._cli",
    "asgifuzz._pytest_plugin",
    "asgifuzz._campaign",
    "asgifuzz._confirm",
    "asgifuzz._releases",
    "asgifuzz._repro",
    "asgifuzz._corpus",
    "asgifuzz.strategies",
    "asgifuzz._oracles",
    "asgifuzz._driver",
    "asgifuzz.models",
    "asgifuzz._targets",
    "asgifuzz._markdown",
    "asgifuzz._errors",
    "asgifuzz._types",
)


def _layer(module: str) -> int | None:
    for n, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return n
    return None


def test_every_module_has_a_layer() -> None:
    loose = [m for m in MODULES if m != "asgifuzz" and _layer(m) is None]
    assert not loose, f"modules outside the declared layers: {loose}"


def test_imports_go_down_the_layers() -> None:
    upward = [
        f"{a} imports {b}"
        for a, targets in _edges().items()
        for b in targets
        if a != "asgifuzz"
        and (la := _layer(a)) is not None
        and (lb := _layer(b)) is not None
        and lb < la
    ]
    assert not upward, "imports against the layers: " + "; ".join(sorted(upward))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"{MODULES[module].relative_to(PACKAGE.parent)} has {lines} lines, more "
        f"than {MAX_LINES}: split it by role"
    )


def test_no_private_name_from_another_module() -> None:
    used = [
        f"{imp.module}:{imp.line} imports {imp.target}.{name}"
        for imp in IMPORTS
        for name in imp.names
        if name.startswith("_")
        and not name.startswith("__")
        and f"{imp.target}.{name}" not in MODULES
    ]
    assert not used, "private names used from another module: " + "; ".join(used)


def test_function_level_imports_say_why() -> None:
    silent = [
        f"{imp.module}:{imp.line} ({imp.target})"
        for imp in IMPORTS
        if imp.in_function and not imp.commented
    ]
    assert not silent, (
        "function-level imports of asgifuzz's own modules need a comment saying "
        "what they save (start-up time: Starlette, rich, matplotlib, redis): "
        + "; ".join(silent)
    )


def test_errors_and_types_import_nothing_of_asgifuzz() -> None:
    for module in ("asgifuzz._errors", "asgifuzz._types"):
        assert not [imp for imp in IMPORTS if imp.module == module], module
