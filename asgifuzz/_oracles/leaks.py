"""Invariant I7: nothing leaks (unclosed resources, unraisable errors, tasks)."""

from __future__ import annotations

import re

from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation

_LEAK_WARNINGS = ("ResourceWarning", "RuntimeWarning")


def leaks(f: Facts) -> list[Violation]:
    """I7: no resource or coroutine warning, no unraisable exception, no task
    still pending when the app returned."""
    o = f.outcome
    out = [
        Violation("I7", f"the run left {w}", _leak_tag(w), _leak_frames(w))
        for w in o.warnings
        if w.startswith(_LEAK_WARNINGS)
    ]
    # A generator of asgifuzz's own models (a model layer's body rewriter) is
    # left open because what iterates it was: when the same run also left a
    # generator of the code under test open, that one names the failure.
    out.sort(key=lambda v: bool(v.frames) and v.frames[0].startswith(_OWN))
    out += [
        Violation(
            "I7",
            f"an exception was raised where nobody could catch it: {t}",
            "unraisable",
        )
        for t in o.unraisable
    ]
    out += [
        Violation("I7", f"a task was still pending when the app returned: {t}", "task")
        for t in o.pending_tasks
    ]
    return out


#: Where asgifuzz's own generators are defined (``module.qualname``).
_OWN = "asgifuzz."
#: The generator trio names in its warning: ``module.qualname``.
_GENERATOR = re.compile(r"Async generator '([^']+)'")


def _leak_frames(warning: str) -> tuple[str, ...]:
    """For an async generator, where it was defined, as the signature's frame
    (``starlette.middleware.base.BaseHTTPMiddleware.__call__.<locals>.call_next.
    <locals>:body_stream``): two generators left open are two bugs
    (StreamingResponse's body iterator, BaseHTTPMiddleware's body stream)."""
    match = _GENERATOR.search(warning)
    if match is None:
        return ()
    where, _, name = match.group(1).rpartition(".")
    return (f"{where}:{name}",)


def _leak_tag(warning: str) -> str:
    """A warning's short name: what leaked (the driver records warnings as text)."""
    if "Async generator" in warning:
        return "asyncgen"
    if "never awaited" in warning:
        return "coroutine"
    match = re.search(r"<(\w+)", warning)
    return match.group(1) if match else warning.split(":")[0]
