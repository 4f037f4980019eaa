"""The public namespaces: sorted ``__all__``, every name exported and documented."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = ["asgifuzz", "asgifuzz.models", "asgifuzz.strategies"]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_sorted_and_documented(name: str) -> None:
    module = importlib.import_module(name)

    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, Classes, functions.
    def kind(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    assert module.__all__ == sorted(module.__all__, key=kind)
    for attr in module.__all__:
        value = getattr(module, attr)
        if callable(value) or isinstance(value, type):
            assert (value.__doc__ or "").strip(), f"{name}.{attr} has no docstring"


def test_importing_asgifuzz_imports_no_starlette() -> None:
    code = "import sys, asgifuzz; print('starlette' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute() -> None:
    import asgifuzz

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        asgifuzz.nope  # noqa: B018


def _public_types(function: object) -> set[str]:
    """The asgifuzz classes a public function returns or names in its docstring
    (`Outcome`, `InvariantViolation`): what a user must be able to import."""
    import inspect
    import re
    import typing

    loaded = [m for n, m in sys.modules.items() if n.startswith("asgifuzz.")]
    found = set()
    returned = typing.get_type_hints(function).get("return")
    named = set(re.findall(r"`(\w+)`", inspect.getdoc(function) or ""))
    classes = [getattr(m, n) for m in loaded for n in named if hasattr(m, n)]
    for value in [returned, *classes]:
        if isinstance(value, type) and value.__module__.startswith("asgifuzz"):
            found.add(value.__name__)
    return found


def test_all_names_what_the_public_functions_return_and_raise() -> None:
    import asgifuzz

    needed = {"AsgiFuzzError"}  # the root of everything asgifuzz raises on purpose
    for name in ("run", "judge", "check"):
        needed |= _public_types(getattr(asgifuzz, name))
    assert {"Outcome", "Verdict", "InvariantViolation"} <= needed
    missing = needed - set(asgifuzz.__all__)
    assert not missing, f"asgifuzz.__all__ lacks {sorted(missing)}"


@pytest.mark.parametrize("name", PUBLIC)
def test_all_has_no_extra_and_no_missing_names(name: str) -> None:
    """Every name in ``__all__`` resolves, and every public name the module
    defines or imports on purpose is in ``__all__`` (anyio's
    ``test_all_attributes``, httpx's ``test_exported_members``)."""
    import types

    module = importlib.import_module(name)
    for attr in module.__all__:
        getattr(module, attr)  # an extra (unresolvable) name raises here
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and n not in ("annotations", "TYPE_CHECKING", "Any", "importlib")
    }
    assert public <= set(module.__all__), (
        f"{name} has public names not in __all__: {sorted(public - set(module.__all__))}"
    )
