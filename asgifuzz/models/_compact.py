"""Long byte strings in few characters: literal pieces and runs of a repeated
unit, for the bodies of case files and reproducers.

A drawn request body can be 1 MiB (``prefix + filler * n + suffix``, see
`asgifuzz.strategies._vocabulary`), and a case file holds at most 1 MiB. A
segment over `COMPACT_OVER` bytes is therefore written as a list of pieces, a
string for literal bytes and ``{"repeat": unit, "times": n}`` for a run, where
that is much shorter; every other segment stays a plain string, so older cases
(and their hashes) are unchanged. Reading expands the pieces into the segment's
bytes within `MAX_BODY`: the model and the driver only ever see bytes.
"""

from __future__ import annotations

import re
from typing import Any

from asgifuzz.models._reader import Reader, shown

#: Segments longer than this may be written in pieces.
COMPACT_OVER = 4096
#: The most bytes a request body expands to (the drawn bodies stay near 1 MiB).
MAX_BODY = 8 << 20
#: The most pieces in one segment.
MAX_PIECES = 10_000
#: The longest repeated unit, and the fewest repeats, that make a run.
MAX_UNIT, MIN_TIMES = 16, 64
_RUN = re.compile(rb"(.{1,%d}?)\1{%d,}" % (MAX_UNIT, MIN_TIMES - 1), re.DOTALL)

Piece = bytes | tuple[bytes, int]


def pieces(data: bytes) -> list[Piece]:
    """``data`` as literal pieces and ``(unit, times)`` runs, in order."""
    out: list[Piece] = []
    at = 0
    for run in _RUN.finditer(data):
        unit = run.group(1)
        if run.start() > at:
            out.append(data[at : run.start()])
        out.append((unit, (run.end() - run.start()) // len(unit)))
        at = run.end()
    if at < len(data):
        out.append(data[at:])
    return out


def compact(data: bytes, over: int = COMPACT_OVER) -> list[Piece] | None:
    """The pieces of ``data`` if it is longer than ``over`` bytes and they are
    under half its size, else None."""
    if len(data) <= over:
        return None
    found = pieces(data)
    size = sum(len(p) if isinstance(p, bytes) else len(p[0]) + 30 for p in found)
    return found if 2 * size < len(data) and len(found) <= MAX_PIECES else None


def expression(data: bytes, over: int = 256, lit: Any = repr) -> str:
    """``data`` as a Python expression: its literal (``lit``), or where it is
    long, a sum of pieces and runs, ``b'{"data": "' + b'a' * 1048576 + b'"}'``."""
    found = compact(data, over)
    if found is None:
        return str(lit(data))
    return " + ".join(
        lit(p) if isinstance(p, bytes) else f"{lit(p[0])} * {p[1]}" for p in found
    )


def segment_to_data(segment: bytes) -> str | list[Any]:
    """A body segment's JSON form: latin-1 text, or its pieces if long."""
    found = compact(segment)
    if found is None:
        return segment.decode("latin-1")
    return [
        p.decode("latin-1")
        if isinstance(p, bytes)
        else {"repeat": p[0].decode("latin-1"), "times": p[1]}
        for p in found
    ]


def body_from_data(
    r: Reader, raw: object, max_segments: int, *, field: str = "request.body"
) -> tuple[bytes, ...]:
    """A request body from its JSON form: a list of segments, each latin-1 text
    or a list of pieces (text, or ``{"repeat": text, "times": n}``), expanding
    to at most `MAX_BODY` bytes in all."""
    if not isinstance(raw, list) or len(raw) > max_segments:
        raise r.fail(
            field,
            f"is {shown(raw)}; must be a list of at most {max_segments} segments "
            "(strings, bytes as latin-1)",
        )
    segments, total = [], 0
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if isinstance(item, str):
            segment = _latin1(r, item, where)
        elif isinstance(item, list) and len(item) <= MAX_PIECES:
            segment = b"".join(
                _piece(r, p, f"{where}[{j}]", MAX_BODY - total)
                for j, p in enumerate(item)
            )
        else:
            raise r.fail(
                where,
                f"is {shown(item)}; must be a string (bytes as latin-1) or a list "
                f'of at most {MAX_PIECES} pieces (strings and {{"repeat": ..., '
                '"times": n}})',
            )
        total += len(segment)
        if total > MAX_BODY:
            raise r.fail(
                where,
                f"makes the body over {MAX_BODY} bytes (8 MiB); the most a case holds",
            )
        segments.append(segment)
    return tuple(segments)


def _latin1(r: Reader, text: str, where: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise r.fail(
            where, "holds a character above U+00FF; bytes are stored as latin-1"
        ) from None


def _piece(r: Reader, raw: object, where: str, room: int) -> bytes:
    if isinstance(raw, str):
        return _latin1(r, raw, where)
    d = r.obj(raw, where, {"repeat", "times"})
    unit = d.get("repeat")
    if not isinstance(unit, str) or not 1 <= len(unit) <= 10_000:
        raise r.fail(
            f"{where}.repeat",
            f"is {shown(unit)}; must be a string of 1 to 10000 characters "
            "(bytes as latin-1)",
        )
    data = _latin1(r, unit, f"{where}.repeat")
    times = r.int_(d, "times", where, 1, MAX_BODY)
    if len(data) * times > room:
        raise r.fail(
            f"{where}.times",
            f"is {times}: {len(data) * times} bytes make the body over {MAX_BODY} "
            "bytes (8 MiB), the most a case holds",
        )
    return data * times
