"""What to fuzz of the user's code: `TargetConfig`, from pyproject.toml (the command
line's options are `asgifuzz._cli.options`)."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from asgifuzz._errors import UsageError
from asgifuzz._targets import declarations as decl
from asgifuzz._targets.extras import parse_extras
from asgifuzz._targets.specs import (
    AppTarget,
    MiddlewareTarget,
    allow_app,
    allow_middleware,
    app_target,
    load_app,
    load_middleware,
    parse_spec,
)


@dataclass(frozen=True)
class TargetConfig:
    """What to fuzz of the user's code, as import specs (picklable, for workers).

    From ``[tool.asgifuzz]`` in ``pyproject.toml`` and the command line:
    ``middleware`` specs, an ``app`` spec, extra ``routes``, ``lifespan``,
    ``builtin`` (mix built-in model layers with the user's middleware) and
    ``exclude_routes`` (found routes not to request, ``"[METHOD] /path"``);
    what every drawn request gets: ``headers`` (``"name: value"``), ``cookies``
    (``"name=value"``) and ``requests``, the import spec of a Hypothesis
    strategy of `asgifuzz.models.Request` that replaces the drawn requests; and
    ``declarations``: what each layer, by name, declares it does
    (`asgifuzz._targets.declarations`).
    """

    middleware: tuple[str, ...] = ()
    app: str = ""
    routes: tuple[str, ...] = ()
    lifespan: bool = True
    builtin: bool = True
    exclude_routes: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    cookies: tuple[str, ...] = ()
    requests: str = ""
    declarations: tuple[tuple[str, decl.Declaration], ...] = ()
    #: The scope types to draw and their weights (``--scope``; checked by the
    #: command line); ``"auto"``: all the targets support; None: http.
    scopes: tuple[tuple[str, int], ...] | str | None = None

    @property
    def empty(self) -> bool:
        """Nothing of the user's: no code, and nothing added to the requests."""
        return not (
            self.middleware or self.app or self.headers or self.cookies or self.requests
        )

    @property
    def scope_choice(self) -> list[str] | str | dict[str, int]:
        """``scopes`` as `asgifuzz.strategies.cases` takes them."""
        if self.scopes is None:
            return ["http"]
        return self.scopes if isinstance(self.scopes, str) else dict(self.scopes)

    @property
    def plain(self) -> bool:
        """Nothing of the user's, and the default scopes: the default cases."""
        return self.empty and self.scopes is None

    def extras(self) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        """The headers and cookies every request gets, checked (`UsageError`)."""
        return parse_extras(self.headers, self.cookies)

    def allow(self) -> tuple[list[MiddlewareTarget], AppTarget | None]:
        """Import, check and allow every target (`UsageError` on the first bad one)."""
        mws = [
            allow_middleware(
                load_middleware(
                    s, declared=decl.declared_for(decl.spec_name(s), self.declarations)
                )
            )
            for s in self.middleware
        ]
        decl.unmatched({m.name for m in mws}, self.declarations)
        app = None
        if self.app:
            app = allow_app(
                load_app(
                    self.app, "--app", self.routes, self.lifespan, self.exclude_routes
                )
            )
        return mws, app

    def notes(self) -> list[str]:
        """What the output says about the targets: the app's found routes that
        are not requested, and why (from the app this config allowed, else
        imported and allowed now: an app factory is not called twice)."""
        if not self.app:
            return []
        name = parse_spec(self.app, "--app")[0] or "app"
        try:
            app: AppTarget | None = app_target(name)
        except UsageError:
            app = None
        if app is None or app.spec != self.app.strip():  # not allowed by this config
            _, app = self.allow()
        return [] if app is None else list(app.notes)

    def options(self) -> str:
        """The command-line options that allow these targets again (for replay)."""
        parts = [f"--middleware {shlex.quote(s)}" for s in self.middleware]
        if self.app:
            parts.append(f"--app {shlex.quote(self.app)}")
        parts += [f"--route {shlex.quote(r)}" for r in self.routes]
        parts += [f"--exclude-route {shlex.quote(r)}" for r in self.exclude_routes]
        if not self.lifespan:
            parts.append("--no-lifespan")
        return " ".join(parts)


_CONFIG_KEYS = {
    *("middleware", "app", "routes", "lifespan", "builtin", "exclude_routes"),
    *("headers", "cookies", "requests"),
}


def load_config(path: Path) -> TargetConfig:
    """``[tool.asgifuzz]`` of a ``pyproject.toml`` (an empty config if none)."""
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
    requests = table.get("requests", "")
    if not isinstance(requests, str):
        raise UsageError(
            f'{where} requests must be a string, e.g. requests = "mypkg.fuzz:requests"'
        )
    middleware, declared = decl.middleware_table(table.get("middleware", []), where)
    config = TargetConfig(
        middleware=middleware,
        app=app,
        routes=strings("routes"),
        lifespan=flag("lifespan"),
        builtin=flag("builtin"),
        exclude_routes=strings("exclude_routes"),
        headers=strings("headers"),
        cookies=strings("cookies"),
        requests=requests,
        declarations=declared,
    )
    try:
        config.extras()
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return config
