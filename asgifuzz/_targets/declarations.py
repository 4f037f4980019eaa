"""What a user's layer legitimately does, declared per layer: `Declaration`.

A user's middleware is opaque; by default it is judged as a pass-through (the
request body goes down as the client sent it, a stream streams, the response
is the one below it). A layer that does more says so, per layer name, in
``[tool.asgifuzz.middleware.NAME]`` of ``pyproject.toml`` or in the same keys
of the Python API's dict form (``middleware={"NAME": {"spec": Cls, ...}}``),
or at the end of a spec string (``mod:Cls(args); encodes='gzip'``, literals:
`asgifuzz._targets.spec_text.spec_declarations`):

- ``transforms``: ``["request-body"]`` (the layers below read what it passes
  down, not the client's bytes), ``["response-body"]`` (its response body is
  its own: not compared with the one below it, not timed as a stream);
- ``buffers``: ``true`` (it may hold a response body back until the end) or a
  list of media types (``["text/plain", "text/*"]``: only those);
- ``encodes``: a content coding (``"br"``) or a list of them that it may apply;
- ``needs``: ``{headers = ["name: value"], cookies = ["name=value"], state =
  {...}}``: added to every request it sees (``state`` to ``scope["state"]``);
- ``scopes``: the scope types to fuzz it on, of ``http``, ``websocket`` and
  ``lifespan`` (default: all three, as an ASGI middleware passes on the scopes
  it does not handle); ``http`` must be among them.

Each oracle reads these (`asgifuzz._oracles.facts.declarations`). Bad keys and
values are a `UsageError` naming the file, the table, the key and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asgifuzz._errors import UsageError
from asgifuzz._targets.spec_text import parse_spec

TRANSFORMS = ("request-body", "response-body")
#: Content codings a layer may declare (RFC 9110 §8.4.1, IANA's registry).
CODINGS = ("br", "compress", "deflate", "gzip", "zstd")
SCOPES = ("http", "websocket", "lifespan")
#: The keys of a declaration (``spec`` names the middleware itself).
KEYS = ("spec", "transforms", "buffers", "encodes", "needs", "scopes")
NEEDS_KEYS = ("headers", "cookies", "state")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
_MEDIA = re.compile(r"[a-z0-9!#$&^_.+-]+/(\*|[a-z0-9!#$&^_.+-]+)\Z")


@dataclass(frozen=True)
class Declaration:
    """What one user layer declares it does (nothing: a pass-through)."""

    transforms: tuple[str, ...] = ()
    #: True: any response body; a tuple: the media types it buffers.
    buffers: bool | tuple[str, ...] = False
    encodes: tuple[str, ...] = ()
    #: ``(name, value)`` headers, lowercase names; they replace drawn ones.
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[str, ...] = ()
    state: Mapping[str, Any] = field(default_factory=dict)
    scopes: tuple[str, ...] = SCOPES
    #: Where it was declared, for messages (not part of what it declares).
    where: str = field(default="", compare=False)

    @property
    def request_body(self) -> bool:
        """It passes down a request body of its own making."""
        return "request-body" in self.transforms

    @property
    def response_body(self) -> bool:
        """It sends a response body of its own making."""
        return "response-body" in self.transforms

    def buffering(self, media_type: str) -> bool:
        """Whether it may hold back a response body of ``media_type``."""
        if self.buffers is True or self.buffers is False:
            return self.buffers
        kind = media_type.split(";")[0].strip().lower()
        return any(
            kind == b or (b.endswith("/*") and kind.startswith(b[:-1]))
            for b in self.buffers
        )


#: A layer that declares nothing: judged as a pass-through.
NOTHING = Declaration()


def _strings(value: object, where: str, key: str, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) for v in value
    ):
        raise UsageError(
            f"{where}: {key} must be a list of strings, not {value!r}; e.g. "
            f"{key} = {example}"
        )
    return tuple(value)


def _among(
    values: tuple[str, ...], allowed: tuple[str, ...], where: str, key: str
) -> tuple[str, ...]:
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise UsageError(
            f"{where}: {key} has {wrong[0]!r}, which is not one of {list(allowed)}; "
            f"fix the value"
        )
    return tuple(dict.fromkeys(values))


def _buffers(value: object, where: str) -> bool | tuple[str, ...]:
    if isinstance(value, bool):
        return value
    types = _strings(value, where, "buffers", 'true or ["text/plain", "text/*"]')
    lowered = tuple(t.strip().lower() for t in types)
    for t in lowered:
        if not _MEDIA.match(t):
            raise UsageError(
                f"{where}: buffers has {t!r}, which is not a media type; write "
                'type/subtype or type/*, e.g. buffers = ["text/event-stream"], or '
                "buffers = true for every response"
            )
    return lowered


def _header(text: str, where: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.match(name) or not _VALUE.match(value):
        raise UsageError(
            f"{where}: needs.headers has {text!r}, which is not a header; write "
            "'name: value' (latin-1, no CR or LF), e.g. headers = ['x-api-key: s3']"
        )
    return name.lower(), value


def _cookie(text: str, where: str) -> str:
    name, equals, value = text.strip().partition("=")
    if not equals or not _TOKEN.match(name) or ";" in value or not _VALUE.match(value):
        raise UsageError(
            f"{where}: needs.cookies has {text!r}, which is not a cookie; write "
            "'name=value' (no ';'), one cookie each, e.g. cookies = ['session=abc']"
        )
    return f"{name}={value}"


def _needs(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(
            f"{where}: needs must be a table, not {value!r}; e.g. needs = "
            "{headers = ['x-api-key: s3'], cookies = ['session=abc'], state = "
            "{tenant = 'a'}}"
        )
    unknown = sorted(str(k) for k in value if k not in NEEDS_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: needs has unknown key {unknown[0]!r}; its keys are "
            f"{list(NEEDS_KEYS)}"
        )
    headers = _strings(value.get("headers", []), where, "needs.headers", "['a: b']")
    cookies = _strings(value.get("cookies", []), where, "needs.cookies", "['s=1']")
    state = value.get("state", {})
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise UsageError(
            f"{where}: needs.state must be a table of names to values, not "
            f"{state!r}; e.g. state = {{tenant = 'a'}}"
        )
    return {
        "headers": tuple(_header(h, where) for h in headers),
        "cookies": tuple(_cookie(c, where) for c in cookies),
        "state": dict(state),
    }


def declaration(data: Mapping[str, Any], where: str) -> Declaration:
    """The declaration in ``data`` (a table's keys, ``spec`` ignored here);
    `UsageError` naming ``where`` (the file and table), the key and the fix."""
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise UsageError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {list(KEYS)} (see "
            "the README, 'Declared layer semantics')"
        )
    transforms = _strings(
        data.get("transforms", []), where, "transforms", '["request-body"]'
    )
    encodes = _strings(data.get("encodes", []), where, "encodes", '"br"')
    scopes = _strings(data.get("scopes", list(SCOPES)), where, "scopes", '["http"]')
    scopes = _among(scopes, SCOPES, where, "scopes")
    if "http" not in scopes:
        raise UsageError(
            f"{where}: scopes = {list(scopes)} leaves out 'http', which every "
            "layer is fuzzed on; add 'http', or do not fuzz this layer"
        )
    needs = _needs(data.get("needs", {}), where)
    return Declaration(
        transforms=_among(transforms, TRANSFORMS, where, "transforms"),
        buffers=_buffers(data.get("buffers", False), where),
        encodes=_among(tuple(e.lower() for e in encodes), CODINGS, where, "encodes"),
        headers=needs["headers"],
        cookies=needs["cookies"],
        state=needs["state"],
        scopes=scopes,
        where=where,
    )


def with_needs(
    headers: list[tuple[bytes, bytes]], declared: tuple[Declaration, ...]
) -> list[tuple[bytes, bytes]]:
    """A request's ``headers`` with what the ``declared`` layers need: their
    headers (replacing ones of the same name) and cookies (first in the cookie
    header, or in one of their own)."""
    extra = [(n.encode(), v.encode("latin-1")) for d in declared for n, v in d.headers]
    jar = "; ".join(c for d in declared for c in d.cookies).encode("latin-1")
    if not extra and not jar:
        return headers
    names = {n for n, _ in extra}
    kept = [(n, v) for n, v in headers if n not in names]
    if jar:
        at = next((i for i, (n, _) in enumerate(kept) if n == b"cookie"), None)
        if at is None:
            kept.append((b"cookie", jar))
        else:
            drawn = kept[at][1]
            kept[at] = (b"cookie", jar + b"; " + drawn if drawn else jar)
    return [*kept, *extra]


def spec_name(spec: str, where: str = "--middleware") -> str:
    """The name a middleware spec allows its target under."""
    name, _, attr, _, _ = parse_spec(spec, where, declarations=True)
    return name or attr.rpartition(".")[2]


def middleware_table(
    value: object, where: str
) -> tuple[tuple[str, ...], tuple[tuple[str, Declaration], ...]]:
    """``[tool.asgifuzz] middleware``: a list of specs, or a table of names to a
    spec or to a table of a ``spec`` and declarations; returns the specs (each
    ``NAME=spec``) and the declarations by name. A declaration without a
    ``spec`` is for a ``--middleware NAME=...`` of the command line."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise UsageError(
                f"{where} middleware must be a list of strings, e.g. "
                'middleware = ["mypkg.mw:Timing"], or a table per layer: '
                '[tool.asgifuzz.middleware.Timing] spec = "mypkg.mw:Timing"'
            )
        return tuple(value), ()
    if not isinstance(value, Mapping):
        raise UsageError(
            f"{where} middleware must be a list of strings (specs) or a table per "
            f'layer, e.g. [tool.asgifuzz.middleware.Gz] spec = "mypkg.mw:Gz"'
        )
    specs: list[str] = []
    declared: list[tuple[str, Declaration]] = []
    for name, entry in value.items():
        table = f"{where.removesuffix(']')}.middleware.{name}]"
        if isinstance(entry, str):
            entry = {"spec": entry}
        if not isinstance(entry, Mapping):
            raise UsageError(
                f'{table} must be a table (spec = "module:Class" and what the '
                f"layer declares) or a spec string, not {entry!r}"
            )
        spec = entry.get("spec", "")
        if not isinstance(spec, str):
            raise UsageError(
                f'{table}: spec must be a string, e.g. spec = "mypkg.mw:{name}"'
            )
        if spec:
            own = parse_spec(spec, f"{table} spec", declarations=True)[0]
            if own is not None and own != name:
                raise UsageError(
                    f"{table}: spec {spec!r} names the layer {own!r}, not {name!r}; "
                    "leave the NAME= out of the spec (the table names it)"
                )
            specs.append(spec if own else f"{name}={spec.strip()}")
        declared.append((name, declaration(entry, table)))
    return tuple(specs), tuple(declared)


def declared_for(
    name: str, declared: tuple[tuple[str, Declaration], ...]
) -> Declaration:
    """What the layer called ``name`` declares (`NOTHING` if it declares nothing)."""
    return next((d for n, d in declared if n == name), NOTHING)


def unmatched(names: set[str], declared: tuple[tuple[str, Declaration], ...]) -> None:
    """`UsageError` for a declaration of a layer that no spec names."""
    for name, d in declared:
        if name not in names:
            raise UsageError(
                f"{d.where} declares a layer with no spec, and no --middleware "
                f'names {name!r}; add spec = "module.path:Class" to the table, or '
                f"pass --middleware '{name}=module.path:Class'"
            )
