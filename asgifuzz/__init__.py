"""asgifuzz: find concurrency, cancellation and streaming bugs in ASGI middleware.

Light at import time: the heavy parts (Starlette, the driver) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from asgifuzz._driver.runner import run
    from asgifuzz._oracles.verdict import check, judge
    from asgifuzz._pytest_plugin import given_cases

__all__ = ["__version__", "check", "given_cases", "judge", "run"]


def __getattr__(name: str) -> Any:
    if name == "given_cases":
        from asgifuzz._pytest_plugin import given_cases

        return given_cases
    if name == "run":
        from asgifuzz._driver.runner import run

        return run
    if name in ("check", "judge"):
        from asgifuzz._oracles import verdict as _verdict

        return getattr(_verdict, name)
    raise AttributeError(f"module 'asgifuzz' has no attribute {name!r}")
