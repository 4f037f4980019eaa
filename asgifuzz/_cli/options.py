"""The options shared by commands: what to fuzz of the user's code (``fuzz`` and
``replay``), read into a `TargetConfig` on top of ``[tool.asgifuzz]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hypothesis.errors import InvalidArgument

from asgifuzz._corpus.known import KnownBugs, known_bugs, shipped_corpus
from asgifuzz._errors import UsageError
from asgifuzz._targets.config import TargetConfig, load_config
from asgifuzz.strategies._scopes import (
    AUTO,
    SCOPE_NAMES,
    SCOPE_WEIGHTS,
    described,
    scope_weights,
    supported_scopes,
)


def add_options(parser: argparse.ArgumentParser, *, generation: bool = True) -> None:
    """``--middleware``, ``--app``, ``--route``, ``--exclude-route``,
    ``--no-lifespan``, ``--no-builtin``, ``--known`` and ``--config``; with
    ``generation`` (``fuzz``), also the options that only change what requests
    are drawn: ``--header``, ``--cookie`` and ``--requests``. A
    command that replays saved cases does not offer those (a saved case holds
    its requests), so passing one is refused instead of silently ignored."""
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
        "path parameters as in the router ('GET /items/{item_id:int}') are filled "
        "with valid values; repeatable",
    )
    group.add_argument(
        "--exclude-route",
        action="append",
        default=[],
        metavar="'[METHOD] /path'",
        help="a route found in the --app's router not to request ('GET /health', "
        "'/admin/*'; GET covers HEAD); FastAPI's docs and OpenAPI routes are "
        "excluded by default (--route brings one back); repeatable",
    )
    if generation:
        _add_generation_options(group)
    else:
        for flag in ("--header", "--cookie", "--requests"):
            group.add_argument(
                flag,
                action=_FuzzOnly,
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
    group.add_argument(
        "--scope",
        type=scopes_option,
        default=None,
        metavar="SCOPES",
        help=f"the ASGI scope types to fuzz, comma-separated among "
        f"{','.join(SCOPE_NAMES)}, each maybe with a weight (http=8,websocket=2; "
        "default weights 8:1:1), or 'auto': all the target supports (the default)",
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
        help="a corpus whose entries (affecting the installed Starlette) label "
        "the findings whose signature they match, besides the corpus shipped with "
        "asgifuzz: known-upstream, with the link, or new; repeatable",
    )
    group.add_argument(
        "--no-known",
        action="store_true",
        help="label every finding new: match no corpus, not even the shipped one",
    )
    group.add_argument(
        "--config",
        type=Path,
        default=Path("pyproject.toml"),
        metavar="PATH",
        help="the pyproject.toml with a [tool.asgifuzz] table (default: "
        "./pyproject.toml; asgifuzz's own has none)",
    )


class _FuzzOnly(argparse.Action):
    """A generation option given to a command that replays saved cases."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string} changes the requests `fuzz` draws; a saved case "
            "holds its own requests, so it has no effect here: drop it (or fuzz "
            f"again with it: asgifuzz fuzz {option_string} ...)"
        )


def _add_generation_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header every request gets (replacing drawn ones of that name), "
        "e.g. --header 'x-api-key: secret'; repeatable",
    )
    group.add_argument(
        "--cookie",
        action="append",
        default=[],
        metavar="'NAME=VALUE'",
        help="a cookie every request sends (with any drawn cookies), e.g. "
        "--cookie 'session=abc123'; repeatable",
    )
    group.add_argument(
        "--requests",
        metavar="SPEC",
        help="module:name of a Hypothesis strategy (or a function returning one) "
        "of asgifuzz.models.Request that draws the requests instead",
    )


def known_from_args(args: argparse.Namespace) -> KnownBugs:
    """The corpus entries that label this run's findings: the shipped corpus
    and each ``--known DIR`` (none with ``--no-known``; see
    `asgifuzz._corpus.known`). Each entry affecting the installed Starlette is
    replayed once, here, to learn its signature."""
    if getattr(args, "no_known", False):
        return KnownBugs()
    directories = list(getattr(args, "known", []))
    for directory in directories:
        if not directory.is_dir():
            raise UsageError(
                f"--known {directory}: not a directory; name a corpus directory"
            )
    shipped = shipped_corpus()
    return known_bugs([*([shipped] if shipped else []), *directories])


def scopes_option(text: str) -> tuple[tuple[str, int], ...] | str:
    """``--scope http,websocket`` or ``http=8,websocket=2``: the scope types and
    their weights (`asgifuzz.strategies._scopes.scope_weights`), checked against
    what this build generates."""
    if text.strip() == AUTO:
        return AUTO
    words = [w.strip() for w in text.split(",") if w.strip()]
    given: dict[str, int] = {}
    for word in words:
        name, eq, weight = word.partition("=")
        if eq and not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"--scope {text}: the weight of {name.strip()!r} is {weight!r}; "
                "write a whole number, as in http=8,websocket=1"
            )
        given[name.strip()] = int(weight) if eq else SCOPE_WEIGHTS.get(name.strip(), 1)
    try:
        return tuple(scope_weights(given if words else []).items())
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(
            str(exc).replace("scopes=", "--scope ", 1)
        ) from None


def scopes_header(targets: TargetConfig) -> str:
    """The scope types drawn and their shares, for the run's header:
    ``--scope``'s, else all the targets support (imported and allowed)."""
    if targets.scopes is None:
        return described(scope_weights(["http"]))
    if not isinstance(targets.scopes, str):  # not AUTO
        return described(dict(targets.scopes))
    mws, app = targets.allow() if targets.middleware or targets.app else ([], None)
    return described(scope_weights(supported_scopes(mws, app)))


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
        exclude_routes=(*base.exclude_routes, *getattr(args, "exclude_route", [])),
        headers=(*base.headers, *getattr(args, "header", [])),
        cookies=(*base.cookies, *getattr(args, "cookie", [])),
        requests=getattr(args, "requests", None) or base.requests,
        declarations=base.declarations,
        scopes=getattr(args, "scope", None) or AUTO,
    )
