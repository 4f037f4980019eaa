"""asgifuzz: find concurrency, cancellation and streaming bugs in ASGI middleware.

Light at import time: the heavy parts (Starlette, Hypothesis, the driver) load on
first use, through the module ``__getattr__`` below (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from asgifuzz._errors import AsgiFuzzError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from asgifuzz._driver.outcome import Outcome
    from asgifuzz._driver.runner import run
    from asgifuzz._oracles.verdict import InvariantViolation, Verdict, check, judge
    from asgifuzz._pytest_plugin import given_cases

__all__ = [
    "AsgiFuzzError",
    "InvariantViolation",
    "Outcome",
    "Verdict",
    "__version__",
    "check",
    "given_cases",
    "judge",
    "run",
]

# Where each lazily loaded public name lives (each module imports Starlette or
# Hypothesis, which ``import asgifuzz`` must not).
_LAZY = {
    "InvariantViolation": "asgifuzz._oracles.verdict",
    "Outcome": "asgifuzz._driver.outcome",
    "Verdict": "asgifuzz._oracles.verdict",
    "check": "asgifuzz._oracles.verdict",
    "given_cases": "asgifuzz._pytest_plugin",
    "judge": "asgifuzz._oracles.verdict",
    "run": "asgifuzz._driver.runner",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'asgifuzz' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
