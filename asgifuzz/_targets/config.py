"""What to fuzz of the user's code: `TargetConfig`, from pyproject.toml and options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgifuzz._errors import UsageError
from asgifuzz._targets.specs import (
    AppTarget,
    MiddlewareTarget,
    allow_app,
    allow_middleware,
    load_app,
    load_middleware,
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--middleware``, ``--app``, ``--route``, ``--no-lifespan``, ``--no-builtin``
    and ``--config``."""
    group = parser.add_argument_group(
        "your own code (also read from [tool.asgifuzz] in ./pyproject.toml)"
    )
    group.add_argument(
        "--middleware",
        action="append",
        default=[],
        metavar="SPEC",
        help="a middleware of yours to mix into the stacks: [NAME=]module:Class or "
        "module:Class(arg=literal, ...); repeatable",
    )
    group.add_argument(
        "--app",
        metavar="SPEC",
        help="an ASGI app of yours to fuzz whole: [NAME=]module:app (a Starlette or "
        "FastAPI app, or any ASGI callable)",
    )
    group.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="'METHOD /path'",
        help="a route of the --app to request, besides those found in its router; "
        "repeatable",
    )
    group.add_argument(
        "--no-lifespan",
        action="store_true",
        help="do not run the app's lifespan startup/shutdown around each run",
    )
    group.add_argument(
        "--no-builtin",
        action="store_true",
        help="stacks of your middleware only, without the built-in model layers",
    )
    group.add_argument(
        "--known",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a corpus whose known-upstream entries (affecting the installed "
        "Starlette) are expected, not failures: matched by failure key, so they "
        "also hide new bugs with the same key; repeatable",
    )
    group.add_argument(
        "--no-known",
        action="store_true",
        help="report every failure, known upstream bugs included",
    )
    group.add_argument(
        "--config",
        type=Path,
        default=Path("pyproject.toml"),
        metavar="PATH",
        help="the pyproject.toml with a [tool.asgifuzz] table (default: "
        "./pyproject.toml; asgifuzz's own has none)",
    )


def known_from_args(args: argparse.Namespace) -> dict[str, str]:
    """The known upstream failure keys for this run (see `asgifuzz._corpus.known`)."""
    from asgifuzz._corpus.known import known_upstream

    if getattr(args, "no_known", False):
        return {}
    directories = list(getattr(args, "known", []))
    for directory in directories:
        if not directory.is_dir():
            raise UsageError(
                f"--known {directory}: not a directory; name a corpus directory"
            )
    return known_upstream(directories)


def config_from_args(args: argparse.Namespace) -> TargetConfig:
    """The configuration file's targets with the command line's added (its
    ``--app`` replaces the file's); nothing is imported yet. Options missing
    from ``args`` (a namespace made by hand) take their defaults."""
    base = load_config(getattr(args, "config", Path("pyproject.toml")))
    return TargetConfig(
        middleware=(*base.middleware, *getattr(args, "middleware", [])),
        app=getattr(args, "app", None) or base.app,
        routes=(*base.routes, *getattr(args, "route", [])),
        lifespan=base.lifespan and not getattr(args, "no_lifespan", False),
        builtin=base.builtin and not getattr(args, "no_builtin", False),
    )


@dataclass(frozen=True)
class TargetConfig:
    """What to fuzz of the user's code, as import specs (picklable, for workers).

    From ``[tool.asgifuzz]`` in ``pyproject.toml`` and the command line:
    ``middleware`` specs, an ``app`` spec, extra ``routes``, ``lifespan`` and
    ``builtin`` (mix built-in model layers with the user's middleware).
    """

    middleware: tuple[str, ...] = ()
    app: str = ""
    routes: tuple[str, ...] = ()
    lifespan: bool = True
    builtin: bool = True

    @property
    def empty(self) -> bool:
        return not self.middleware and not self.app

    def allow(self) -> tuple[list[MiddlewareTarget], AppTarget | None]:
        """Import, check and allow every target (`UsageError` on the first bad one)."""
        mws = [allow_middleware(load_middleware(s)) for s in self.middleware]
        app = None
        if self.app:
            app = allow_app(load_app(self.app, "--app", self.routes, self.lifespan))
        return mws, app

    def strategy(self) -> Any:
        """The cases to fuzz: the user's targets (allowed now) or the models."""
        from asgifuzz.strategies import cases

        mws, app = self.allow()
        return cases(
            middleware=mws or None,
            app=app,
            builtin=self.builtin,
            lifespan=self.lifespan,
        )

    def options(self) -> str:
        """The command-line options that allow these targets again (for replay)."""
        parts = [f"--middleware {_quote(s)}" for s in self.middleware]
        if self.app:
            parts.append(f"--app {_quote(self.app)}")
        parts += [f"--route {_quote(r)}" for r in self.routes]
        if not self.lifespan:
            parts.append("--no-lifespan")
        return " ".join(parts)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


_CONFIG_KEYS = {"middleware", "app", "routes", "lifespan", "builtin"}


def load_config(path: Path) -> TargetConfig:
    """``[tool.asgifuzz]`` of a ``pyproject.toml`` (an empty config if none)."""
    import tomllib

    if not path.is_file():
        return TargetConfig()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{path}: cannot read it as TOML ({exc}); fix the file"
        ) from None
    table = data.get("tool", {}).get("asgifuzz", {})
    where = f"{path}: [tool.asgifuzz]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table")
    unknown = sorted(set(table) - _CONFIG_KEYS)
    if unknown:
        raise UsageError(
            f"{where} has unknown keys {unknown}; allowed: {sorted(_CONFIG_KEYS)}"
        )

    def strings(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(
                f"{where} {key} must be a list of strings, e.g. "
                f'{key} = ["mypkg.mw:Timing"]'
            )
        return tuple(value)

    def flag(key: str) -> bool:
        value = table.get(key, True)
        if not isinstance(value, bool):
            raise UsageError(f"{where} {key} must be true or false, not {value!r}")
        return value

    app = table.get("app", "")
    if not isinstance(app, str):
        raise UsageError(f'{where} app must be a string, e.g. app = "mypkg.main:app"')
    return TargetConfig(
        middleware=strings("middleware"),
        app=app,
        routes=strings("routes"),
        lifespan=flag("lifespan"),
        builtin=flag("builtin"),
    )
