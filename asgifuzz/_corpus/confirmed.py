"""What ``asgifuzz confirm --record`` measured of a corpus entry on real servers.

An entry's ``confirmed`` field maps each real server to the verdict of its last
confirmation: the status (confirmed / not confirmed / not confirmable), the
tries that showed it (k of N, for a case whose outcome depends on timing), the
server's and Starlette's versions it ran, and one line of what the client saw.
It lives in the entry, beside ``affected``, because it is measured data about
that case (it travels with the entry through merges and the shipped corpus),
and outside ``case``: the entry's file name hashes the case alone, so
recording a confirmation never renames or duplicates an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgifuzz._errors import CaseFormatError
from asgifuzz.models._reader import shown

CONFIRMED = "confirmed"
NOT_CONFIRMED = "not confirmed"
NOT_CONFIRMABLE = "not confirmable"
STATUSES = (CONFIRMED, NOT_CONFIRMED, NOT_CONFIRMABLE)
#: The real servers a confirmation may name (``asgifuzz confirm --server``).
SERVER_NAMES = ("uvicorn", "hypercorn", "daphne", "granian")
#: The longest detail kept, and the longest version string.
MAX_DETAIL, MAX_VERSION = 500, 200
#: The fields of one server's record.
FIELDS = ("detail", "hits", "starlette", "status", "tries", "version")


@dataclass(frozen=True)
class Confirmed:
    """One server's recorded verdict on an entry."""

    status: str
    version: str = ""
    starlette: str = ""
    hits: int = 0
    tries: int = 0
    detail: str = ""

    def cell(self) -> str:
        """The verdict in a table cell: ``confirmed (5 of 5)`` for a timed one."""
        if self.tries > 1 and self.status == CONFIRMED:
            return f"{self.status} ({self.hits} of {self.tries})"
        return self.status

    def to_data(self) -> dict[str, Any]:
        """The entry's JSON of this record."""
        return {
            "detail": self.detail[:MAX_DETAIL],
            "hits": self.hits,
            "starlette": self.starlette,
            "status": self.status,
            "tries": self.tries,
            "version": self.version,
        }


def summary(confirmed: dict[str, Confirmed]) -> str:
    """One line for people: each server's verdict, and where it was measured."""
    if not confirmed:
        return "not confirmed on a real server yet (asgifuzz confirm --record)"
    parts = []
    for name in sorted(confirmed, key=_order):
        c = confirmed[name]
        where = f"{name} {c.version}".strip()
        if c.starlette:
            where += f" (Starlette {c.starlette})"
        parts.append(f"{where}: {c.cell()}")
    return "; ".join(parts)


def _order(name: str) -> int:
    return SERVER_NAMES.index(name) if name in SERVER_NAMES else len(SERVER_NAMES)


def _bad(path: Path, where: str, rule: str) -> CaseFormatError:
    return CaseFormatError(f"{path}: field {where!r} {rule}")


def confirmed_from_data(path: Path, data: object) -> dict[str, Confirmed]:
    """Validate an entry's ``confirmed`` field; `CaseFormatError` names the part."""
    if not isinstance(data, dict):
        raise _bad(
            path, "confirmed", f"is {shown(data)}; must map server names to records"
        )
    out = {}
    for name, record in data.items():
        if name not in SERVER_NAMES:
            raise _bad(
                path,
                "confirmed",
                f"names server {shown(name)}; must be one of {list(SERVER_NAMES)}",
            )
        where = f"confirmed.{name}"
        if not isinstance(record, dict) or sorted(record) != list(FIELDS):
            raise _bad(
                path,
                where,
                f"is {shown(record)}; must have exactly the keys {list(FIELDS)}",
            )
        if record["status"] not in STATUSES:
            raise _bad(
                path,
                f"{where}.status",
                f"is {shown(record['status'])}; must be one of {list(STATUSES)}",
            )
        hits, tries = record["hits"], record["tries"]
        if not all(type(n) is int and 0 <= n <= 1000 for n in (hits, tries)) or (
            hits > tries
        ):
            raise _bad(
                path,
                where,
                f"has hits {shown(hits)} of tries {shown(tries)}; must be whole "
                "numbers 0-1000, hits at most tries",
            )
        texts = {"version": MAX_VERSION, "starlette": MAX_VERSION, "detail": MAX_DETAIL}
        for key, most in texts.items():
            if not isinstance(record[key], str) or len(record[key]) > most:
                raise _bad(
                    path,
                    f"{where}.{key}",
                    f"is {shown(record[key])}; must be a string of at most {most} "
                    "characters",
                )
        out[name] = Confirmed(
            record["status"],
            record["version"],
            record["starlette"],
            hits,
            tries,
            record["detail"],
        )
    return out
