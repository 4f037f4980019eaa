"""Typed, validated fields out of untrusted JSON data (the case format's reader)."""

from __future__ import annotations

from typing import Any

from asgifuzz._errors import CaseFormatError


class Reader:
    """Pulls typed, validated fields out of untrusted JSON data."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, rule: str) -> CaseFormatError:
        return CaseFormatError(f"{self.source}: field {path!r} {rule}")

    def obj(self, data: object, path: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - keys)
        if unknown:
            raise self.fail(
                path,
                f"has unknown keys {unknown}; allowed keys are {sorted(keys)} "
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
                f"{path}.{key}", f"is {value!r}; must be an int in [{lo}, {hi}]"
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
        if value not in allowed:
            raise self.fail(
                f"{path}.{key}", f"is {value!r}; must be one of {list(allowed)}"
            )
        return str(value)

    def str_(self, d: dict[str, Any], key: str, path: str, default: str = "") -> str:
        value = d.get(key, default)
        if not isinstance(value, str) or len(value) > 10_000:
            raise self.fail(
                f"{path}.{key}", f"is {value!r:.60}; must be a short string"
            )
        return value

    def pauses(self, d: dict[str, Any], path: str) -> tuple[int, int]:
        value = d.get("pauses", [0, 0])
        ok = isinstance(value, list) and len(value) == 2
        if not ok or not all(type(v) is int and 0 <= v <= 100 for v in value):
            raise self.fail(
                f"{path}.pauses", f"is {value!r}; must be two ints in [0, 100]"
            )
        return (value[0], value[1])
