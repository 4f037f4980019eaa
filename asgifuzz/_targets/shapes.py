"""What an ASGI app looks like, judged before anything runs, app factories, and
`import_object` (a spec's module and attribute, imported with one clear error).

`asgi_problem` reads a callable's signature (nothing is called) so that
``--app os:system`` or a factory named without its call is a usage error with
the fix, not thousands of findings.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asgifuzz._errors import UsageError

#: A spec that ends in a call: ``module:attr(...)``.
_CALL = re.compile(r".*:[A-Za-z_][\w.]*\s*\(.*\)\s*\Z", re.DOTALL)


def asgi_problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be an ASGI app (``"is a class"``, ``"takes (x)"`` ...),
    or None when it can be called as ``obj(scope, receive, send)``.

    Judged from the signature only (nothing is called); a callable whose
    signature cannot be read (a C extension's) gets the benefit of the doubt.
    """
    if inspect.ismodule(obj):
        return "is a module"
    if inspect.isclass(obj):
        return "is a class"
    if not callable(obj):
        return f"is not callable (a {type(obj).__name__})"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None, None, None)
    except TypeError:
        try:
            signature.bind()
        except TypeError:
            return f"takes {signature}, not (scope, receive, send)"
        return "takes no arguments (an app factory?)"
    return None


def short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def calls(spec: str) -> bool:
    """Whether ``spec`` ends in a call, ``module:factory(...)``."""
    return _CALL.match(spec) is not None


def call_factory(
    factory: Any,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    named: str,
    where: str,
) -> Any:
    """The app an app factory makes from literal arguments."""
    if asgi_problem(factory) is None:
        raise UsageError(
            f"{where}: {named} is an ASGI app already, so it takes no arguments: "
            "drop the (...), or name the function that makes the app"
        )
    if not callable(factory) or inspect.isclass(factory):
        raise UsageError(
            f"{where}: {named} is not a function, so it cannot be called as an "
            "app factory; name a function that returns the app"
        )
    try:
        return factory(*args, **kwargs)
    except Exception as exc:
        raise UsageError(
            f"{where}: calling the app factory {named}(...) failed: "
            f"{type(exc).__name__}: {exc}; fix the arguments in the spec"
        ) from None


def import_object(module: str, attr: str, where: str) -> Any:
    """Import ``module`` and get the dotted ``attr``, with one clear error if not."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like uvicorn's --app-dir .
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise UsageError(
                f"{where}: cannot import module {module!r} (no module named "
                f"{exc.name!r}); run from the project's root, install the package, "
                "or add its folder to PYTHONPATH"
            ) from None
        raise UsageError(
            f"{where}: importing {module!r} failed: {type(exc).__name__}: {exc}; "
            "fix the import error in that module"
        ) from None
    except Exception as exc:
        raise UsageError(
            f"{where}: importing {module!r} failed: {type(exc).__name__}: {exc}; "
            "fix the error in that module"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {close}?" if close else f"it has {names[:10]}"
            raise UsageError(
                f"{where}: {module}:{attr} not found: {part!r} is not an attribute "
                f"of {getattr(obj, '__name__', obj)!r}; {hint}"
            ) from None
    return obj
