"""Reading a case or corpus file that may be hostile: one loader for every command.

Only a regular file inside its own directory is opened (a FIFO would block the
reader forever, a device would never end, a symlink out of the corpus would
read what the corpus does not hold), and it is read within `MAX_FILE_BYTES`,
decoded as UTF-8 and parsed within the format's bounds
(`asgifuzz.models.parse_json`). Every failure is one `CaseFormatError` naming
the file, what is wrong with it and the limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from asgifuzz._errors import CaseFormatError
from asgifuzz.models._reader import MAX_FILE_BYTES, parse_json

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: Path, mode: int) -> CaseFormatError | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return CaseFormatError(
        f"{path}: the file is {kind}, not a regular file; a case or corpus file "
        "must be a regular JSON file"
    )


def _too_big(path: Path, size: int) -> CaseFormatError:
    return CaseFormatError(
        f"{path}: the file is {size} bytes; a case or corpus file holds at most "
        f"{MAX_FILE_BYTES} bytes (1 MiB): shrink the case or delete the file"
    )


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file inside its own directory, at most 1 MiB.

    Checked before it is opened (``stat`` follows symlinks, so a link to a FIFO
    or a device is refused unopened), opened non-blocking all the same, and
    checked again on the open descriptor, so a file swapped in between is
    caught too.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CaseFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    problem = _not_regular(path, info.st_mode)
    if problem is not None:
        raise problem
    try:
        real, home = path.resolve(strict=True), path.parent.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise CaseFormatError(f"{path}: cannot resolve it ({exc})") from None
    if not real.is_relative_to(home):
        raise CaseFormatError(
            f"{path}: the file is a symlink to {real}, outside its corpus "
            f"directory {home}; copy the file in instead of linking it"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise _too_big(path, info.st_size)
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):  # POSIX only
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise CaseFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        problem = _not_regular(path, os.fstat(fd).st_mode)
        if problem is not None:
            raise problem
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise CaseFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise _too_big(path, size)
    return b"".join(chunks)


def read_json(path: Path) -> Any:
    """The parsed JSON of a case or corpus file (see `read_bytes`, `parse_json`)."""
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFormatError(
            f"{path}: the file is not UTF-8 JSON (byte {exc.start}: {exc.reason}); "
            "a case or corpus file is UTF-8 JSON text: fix it or delete it"
        ) from None
    return parse_json(text, source=str(path))
