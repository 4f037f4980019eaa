"""Typed, validated fields out of untrusted JSON text and data (the case format's
reader), within bounds that a hostile file cannot stretch."""

from __future__ import annotations

import json
import re
from typing import Any

from asgifuzz._errors import CaseFormatError

#: The most bytes a case or corpus file may hold: a case is a few hundred bytes,
#: a shrunk one rarely over 4 KiB; this leaves room for large hand-made bodies.
MAX_FILE_BYTES = 1 << 20
#: The deepest nesting of arrays and objects: the format itself needs 6
#: (entry > case > stack > layers > layer > pauses).
MAX_DEPTH = 20
#: The most digits of an integer: the largest field (``seed``, 2**64 - 1) has 20.
MAX_DIGITS = 20
#: A string literal, matched without backtracking ("unrolled loop").
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[][{}]")


class _Bad:
    """A value the parser stands in for one it refuses to build; `_check` reports
    it with the field's path."""

    def __init__(self, rule: str) -> None:
        self.rule = rule


def _int(text: str) -> int | _Bad:
    if len(text.lstrip("-")) > MAX_DIGITS:
        return _Bad(
            f"is an integer of {len(text.lstrip('-'))} digits; integers in the case "
            f"format have at most {MAX_DIGITS}"
        )
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Bad:
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                return _Bad(f"has the key {shown(key)} twice; keep one")
            seen.add(key)
    return data


def shown(value: object) -> str:
    """A short, one-line picture of an untrusted value for an error message."""
    if isinstance(value, str) and len(value) > 40:
        return f"a string of {len(value)} characters starting {value[:20]!r}"
    if isinstance(value, list | dict) and len(value) > 8:
        what = "a list of" if isinstance(value, list) else "an object with"
        return f"{what} {len(value)} items"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _depth(text: str) -> int:
    """How deeply arrays and objects nest, counted without recursion."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def parse_json(text: str, *, source: str) -> Any:
    """Parse untrusted JSON text within the format's bounds.

    Refuses, naming the field where there is one: text over `MAX_FILE_BYTES`,
    nesting deeper than `MAX_DEPTH`, integers of more than `MAX_DIGITS` digits,
    a key twice in one object and strings with lone surrogates (which no
    terminal or file can show).
    """
    # A character is at least one byte: count the bytes only of a text that fits.
    size = len(text)
    if size <= MAX_FILE_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise CaseFormatError(
            f"{source}: field '$' is {size} bytes; a case file holds at most "
            f"{MAX_FILE_BYTES} bytes (1 MiB)"
        )
    if _depth(text) > MAX_DEPTH:
        raise CaseFormatError(
            f"{source}: field '$' nests arrays and objects deeper than {MAX_DEPTH} "
            "levels (the case format needs 6); fix the file or delete it"
        )
    try:
        data = json.loads(text, parse_int=_int, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise CaseFormatError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); fix the file or delete it"
        ) from None
    except (RecursionError, ValueError) as exc:  # belt and braces: bounded above
        raise CaseFormatError(
            f"{source}: field '$' cannot be parsed ({type(exc).__name__}); "
            "fix the file or delete it"
        ) from None
    _check(data, "$", source)
    return data


def _check(value: object, path: str, source: str) -> None:
    """Report a stand-in `_Bad` value or a lone surrogate, with its field."""
    if isinstance(value, _Bad):
        raise CaseFormatError(f"{source}: field {path!r} {value.rule}")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise CaseFormatError(
                f"{source}: field {path!r} holds a lone surrogate (an unpaired "
                "\\ud800-\\udfff escape); write the character itself"
            ) from None
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]", source)
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = key[:40] if path == "$" else f"{path}.{key[:40]}"
            _check(key, inner, source)
            _check(item, inner, source)


class Reader:
    """Pulls typed, validated fields out of untrusted JSON data."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, rule: str) -> CaseFormatError:
        return CaseFormatError(f"{self.source}: field {path!r} {rule}")

    def obj(self, data: object, path: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"must be an object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in set(data) - keys)
        if unknown:
            listed = ", ".join(shown(k) for k in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise self.fail(
                path,
                f"has unknown keys [{listed}]{more}; allowed keys are {sorted(keys)} "
                "(remove them, or upgrade asgifuzz if the file is newer)",
            )
        return data

    def int_(self, d: dict[str, Any], key: str, path: str, lo: int, hi: int) -> int:
        value = d.get(key, 0)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not lo <= value <= hi
        ):
            raise self.fail(
                f"{path}.{key}", f"is {shown(value)}; must be an int in [{lo}, {hi}]"
            )
        return value

    def choice(
        self,
        d: dict[str, Any],
        key: str,
        path: str,
        allowed: tuple[str, ...],
        default: str,
    ) -> str:
        value = d.get(key, default)
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(
                f"{path}.{key}", f"is {shown(value)}; must be one of {list(allowed)}"
            )
        return value

    def str_(
        self,
        d: dict[str, Any],
        key: str,
        path: str,
        default: str = "",
        *,
        max_length: int = 10_000,
        latin1: bool = False,
    ) -> str:
        value = d.get(key, default)
        if not isinstance(value, str) or len(value) > max_length:
            raise self.fail(
                f"{path}.{key}",
                f"is {shown(value)}; must be a string of at most {max_length} "
                "characters",
            )
        if latin1 and max(value, default="\0") > "\xff":
            raise self.fail(
                f"{path}.{key}",
                "holds a character above U+00FF; it goes on the wire as latin-1",
            )
        return value

    def pauses(self, d: dict[str, Any], path: str) -> tuple[int, int]:
        value = d.get("pauses", [0, 0])
        ok = isinstance(value, list) and len(value) == 2
        if not ok or not all(type(v) is int and 0 <= v <= 100 for v in value):
            raise self.fail(
                f"{path}.pauses", f"is {shown(value)}; must be two ints in [0, 100]"
            )
        return (value[0], value[1])
