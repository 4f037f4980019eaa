"""Corpus entries: a shrunk case plus what is known about it, as reviewable JSON.

An entry names the failure key it shows (``I1:RuntimeError``), its status
(``new``, ``known-upstream`` with a link, ``fixed``) and the Starlette releases
it affects, so that the test suite replays it as a strict xfail inside that
range and as a pass outside it. An entry of Starlette's failure found in a case
with the user's layers also holds ``swapped``: the case with each of them
swapped for the built-in pass-through of its family, which fails the same way
(`asgifuzz repro` writes its script). Loading is strict, and a corpus file can only
name asgifuzz's own models: it never makes anything get imported.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgifuzz._corpus.confirmed import Confirmed, confirmed_from_data
from asgifuzz._corpus.files import read_json
from asgifuzz._errors import CaseFormatError
from asgifuzz._oracles.registry import FAULT_KEYS, INVARIANTS
from asgifuzz.models import Case, case_from_data, case_to_data
from asgifuzz.models._reader import shown

ENTRY_FORMAT = 1
STATUSES = ("new", "known-upstream", "fixed")
#: An invariant's key, or a fault's (the supervisor's: hang:wall, crash:exit, ...).
_KEY = re.compile(
    rf"^(({'|'.join(INVARIANTS)})(:[\w.+-]{{1,200}})?|{'|'.join(FAULT_KEYS)})$"
)
_VERSION = re.compile(r"^\d{1,9}(\.\d{1,9}){0,7}$")
#: The longest title, upstream link, notes, date and signature.
MAX_TEXT = 2000
#: The most messages an entry keeps, and the longest one (longer ones are cut
#: when an entry is saved).
MAX_MESSAGES, MAX_MESSAGE = 100, 10_000
#: The most affected ranges, recorded versions, and targets of each kind.
MAX_ITEMS = 100


def parse_version(text: str) -> tuple[int, ...]:
    """``"0.32.0.post1"`` -> ``(0, 32, 0)``: the release numbers only."""
    match = re.match(r"^\d+(\.\d+)*", text)
    if match is None:
        raise ValueError(f"{text!r} is not a release number like '0.38.3'")
    return tuple(int(p) for p in match.group(0).split("."))


@dataclass(frozen=True)
class Entry:
    """One corpus file."""

    path: Path
    key: str
    title: str
    notes: str
    signature: str
    status: str
    upstream: str
    affected: tuple[tuple[str, str], ...]
    backends: tuple[str, ...]
    case: Case
    #: The user targets the case names: {"middleware"/"app": {name: spec}}.
    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    #: For Starlette's failure in a case with the user's layers: the case with
    #: each swapped for the built-in pass-through of its family.
    swapped: Case | None = None
    #: Per real server, the verdict ``asgifuzz confirm --record`` measured.
    confirmed: dict[str, Confirmed] = field(default_factory=dict)
    #: The root cause, shared by the entries that are one bug showing several
    #: ways (a dropped body message truncates one body and hangs another);
    #: "": the entry is a bug of its own.
    cause: str = ""

    def affects(self, version: str) -> bool:
        """Whether Starlette ``version`` lies in one of the affected ranges."""
        v = parse_version(version)
        return any(
            parse_version(lo) <= v <= parse_version(hi) for lo, hi in self.affected
        )

    def describe_range(self) -> str:
        return ", ".join(f"{lo}-{hi}" for lo, hi in self.affected) or "no release"


def _fail(path: Path, field: str, rule: str) -> CaseFormatError:
    return CaseFormatError(f"{path}: field {field!r} {rule}")


def load_entry(path: Path) -> Entry:
    """Read and validate one corpus file; `CaseFormatError` names the field.

    The file goes through `read_json`, the loader of every command.
    """
    return entry_from_data(path, read_json(path))


def _strings(value: object, most: int, longest: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= most
        and all(isinstance(v, str) and len(v) <= longest for v in value)
    )


def entry_from_data(path: Path, data: Any) -> Entry:
    """Validate the parsed JSON of corpus file ``path`` (see `load_entry`)."""
    allowed = {
        "format",
        "key",
        "title",
        "status",
        "upstream",
        "affected",
        "backends",
        "case",
        "notes",
        "found",
        "versions",
        "messages",
        "signature",
        "targets",
        "swapped",
        "confirmed",
        "cause",
    }
    if not isinstance(data, dict):
        raise _fail(path, "$", "must be an object")
    unknown = sorted(str(k) for k in set(data) - allowed)
    if unknown:
        listed = ", ".join(shown(k) for k in unknown[:5])
        raise _fail(
            path, "$", f"has unknown keys [{listed}]; allowed: {sorted(allowed)}"
        )
    if data.get("format") != ENTRY_FORMAT:
        raise _fail(
            path, "format", f"is {shown(data.get('format'))}; must be {ENTRY_FORMAT}"
        )
    key = data.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise _fail(
            path,
            "key",
            f"is {shown(key)}; must look like 'I1:RuntimeError', 'I3' or 'hang:wall'",
        )
    status = data.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise _fail(
            path, "status", f"is {shown(status)}; must be one of {list(STATUSES)}"
        )
    texts = {}
    for name in ("title", "upstream", "notes", "found", "signature", "cause"):
        value = data.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise _fail(
                path,
                name,
                f"is {shown(value)}; must be a string of at most {MAX_TEXT} characters",
            )
        texts[name] = value
    versions = data.get("versions", {})
    if not (
        isinstance(versions, dict)
        and len(versions) <= MAX_ITEMS
        and _strings(list(versions.values()), MAX_ITEMS, 200)
        and all(len(k) <= 200 for k in versions)
    ):
        raise _fail(
            path,
            "versions",
            f"is {shown(versions)}; must map at most {MAX_ITEMS} names to version "
            "strings of at most 200 characters",
        )
    if not _strings(data.get("messages", []), MAX_MESSAGES, MAX_MESSAGE):
        raise _fail(
            path,
            "messages",
            f"must be a list of at most {MAX_MESSAGES} strings of at most "
            f"{MAX_MESSAGE} characters",
        )
    affected = data.get("affected", [])
    if (
        not isinstance(affected, list)
        or len(affected) > MAX_ITEMS
        or not all(
            isinstance(r, list)
            and len(r) == 2
            and all(isinstance(v, str) and _VERSION.match(v) for v in r)
            for r in affected
        )
    ):
        raise _fail(
            path,
            "affected",
            f"must be a list of at most {MAX_ITEMS} [first, last] releases (numbers "
            "of at most 9 digits), "
            'e.g. [["0.28.0", "0.38.2"]]',
        )
    backends = data.get("backends", ["asyncio", "trio"])
    if (
        not isinstance(backends, list)
        or not backends
        or not all(isinstance(b, str) for b in backends)
        or len(set(backends)) < len(backends)
        or not set(backends) <= {"asyncio", "trio"}
    ):
        raise _fail(
            path,
            "backends",
            f"is {shown(backends)}; must be a non-empty list of 'asyncio' and 'trio', "
            "each at most once",
        )
    case = case_from_data(data.get("case"), source=f"{path}: case")
    targets = data.get("targets", {})
    if not isinstance(targets, dict) or not all(
        kind in ("middleware", "app")
        and isinstance(named, dict)
        and len(named) <= MAX_ITEMS
        and all(len(k) <= 64 for k in named)
        and _strings(list(named.values()), MAX_ITEMS, 1000)
        for kind, named in targets.items()
    ):
        raise _fail(
            path,
            "targets",
            f'must map "middleware"/"app" to at most {MAX_ITEMS} {{name: import '
            "spec} (names of at most 64, specs of at most 1000 characters); it "
            "is only shown, never imported",
        )
    swapped = None
    if "swapped" in data:
        swapped = case_from_data(data["swapped"], source=f"{path}: swapped")
        if swapped.app or any(la.family == "user" for la in swapped.stack.layers):
            raise _fail(
                path,
                "swapped",
                "names user code; it must be the case with each user layer "
                "replaced by a built-in pass-through (Starlette code only)",
            )
    return Entry(
        path=path,
        key=key,
        title=texts["title"],
        notes=texts["notes"],
        signature=texts["signature"],
        status=status,
        upstream=texts["upstream"],
        affected=tuple((lo, hi) for lo, hi in affected),
        backends=tuple(backends),
        case=case,
        targets=targets,
        swapped=swapped,
        confirmed=confirmed_from_data(path, data.get("confirmed", {})),
        cause=texts["cause"],
    )


def load_corpus(directory: Path) -> list[Entry]:
    """Every ``*.json`` entry below ``directory``, sorted by path."""
    return [load_entry(p) for p in sorted(directory.glob("*.json"))]


def starlette_version() -> str:
    from importlib.metadata import version

    return version("starlette")


def environment() -> dict[str, str]:
    """Versions of everything that decides how a case runs."""
    import platform
    from importlib.metadata import version

    found = {"python": platform.python_version()}
    for name in ("starlette", "anyio", "trio", "hypothesis"):
        found[name] = version(name)
    return found


def case_size(case: Case) -> int:
    """How big a case is: the length of its canonical JSON (smaller is simpler)."""
    return len(json.dumps(case_to_data(case), sort_keys=True))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on a corpus directory, across processes (flock)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_atomically(path: Path, data: object) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def entry_path(directory: Path, key: str, case: Case) -> Path:
    """``<key-slug>-<hash of the case's canonical JSON>.json``."""
    import hashlib

    text = json.dumps(case_to_data(case), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    slug = re.sub(r"[^\w]+", "-", key).strip("-").lower()
    return directory / f"{slug}-{digest}.json"


def add_entry(directory: Path, data: dict[str, Any], case: Case) -> Path | None:
    """Add an entry unless the corpus has one as small or smaller with its signature.

    A larger entry of the same signature is replaced (the new file is written
    before the old one goes). Holds the directory's lock, so workers writing the
    same corpus at once lose nothing and leave no partial file. Returns the path
    written, or None when a smaller entry was already there.
    """
    # By signature and owner: Starlette's failure in a case with the user's
    # layers (one with ``swapped``) is not theirs of the same signature.
    ident = (data.get("signature") or data["key"], "swapped" in data)
    size = case_size(case)
    with _locked(directory):
        rivals = [
            e
            for e in load_corpus(directory)
            if (e.signature or e.key, e.swapped is not None) == ident
        ]
        if any(case_size(e.case) <= size for e in rivals):
            return None
        path = entry_path(directory, data["key"], case)
        write_atomically(path, data)
        for rival in rivals:
            if rival.path != path:
                rival.path.unlink(missing_ok=True)
        return path


def save_finding(
    directory: Path,
    key: str,
    case: Case,
    backend: str,
    messages: list[str],
    signature: str = "",
    targets: dict[str, dict[str, str]] | None = None,
    swapped: Case | None = None,
) -> Path | None:
    """Save a shrunk failure as a ``new`` entry (see `add_entry`).

    ``targets`` records the user targets the case names, with their import
    specs: what a person must allow to replay it (never imported from here).
    ``swapped``: for Starlette's failure in a case with the user's layers, the
    Starlette-only case that fails the same way.
    """
    import datetime

    env = environment()
    data = {
        "format": ENTRY_FORMAT,
        "key": key,
        "signature": (signature or key)[:MAX_TEXT],
        "title": messages[0][:200] if messages else key,
        "status": "new",
        "upstream": "",
        "affected": [[env["starlette"], env["starlette"]]],
        "backends": [backend]
        if backend in ("asyncio", "trio")
        else ["asyncio", "trio"],
        "found": datetime.date.today().isoformat(),
        "versions": env,
        "messages": [m[:MAX_MESSAGE] for m in messages[:MAX_MESSAGES]],
        "case": case_to_data(case),
        **({"targets": targets} if targets else {}),
        **({"swapped": case_to_data(swapped)} if swapped is not None else {}),
    }
    return add_entry(directory, data, case)
