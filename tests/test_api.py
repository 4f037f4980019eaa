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
