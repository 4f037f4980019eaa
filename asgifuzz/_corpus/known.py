"""Known bugs: corpus entries that a fresh finding may be, matched by signature.

``asgifuzz fuzz`` labels each finding whose signature matches an entry of the
corpus that affects the installed Starlette: ``known-upstream`` (with the
entry's link) for an entry of that status or ``fixed`` (an upstream bug fixed
in a later release), else ``new`` with the entry named (a bug written up here,
not reported upstream yet). Findings are labelled, never hidden,
so the label is on by default: the corpus shipped with asgifuzz
(`shipped_corpus`), plus any ``--known DIR``.

A finding is an entry's when any of its signatures (one per key its case
showed, `KnownBugs.match_any`) matches one of the entry's: a root cause that
shows under several keys need not be headlined by the entry's own.

Matching (`match_key`) compares what stays put from one install and one
shrink to the next:

- a signature with a frame (``I1:RuntimeError@starlette/middleware/base.py:
  BaseHTTPMiddleware.__call__.<locals>.call_next``) by its key, the frame's
  file name (not the directories: site-packages, dist-packages, a checkout)
  and the function's own name (not its class or enclosing function, not a
  line number);
- a signature without one (``I4:response``) by its key and the user code in
  the case (the ``user.*`` layer kinds and the app, by name): a hang that
  needs the user's layer is not Starlette's known hang. The built-in layers are
  not compared: shrinking often leaves a pass-through layer or two that the
  bug does not need, so comparing them would call a known bug new. An
  endpoint that uses an ASGI extension is (``trailers``, ``zerocopysend``...):
  a response that never completes because a layer drops a zero-copy send is
  not another bug's ``I1:incomplete``. Two
  Starlette bugs of one such key look alike (I4:response of one hang and of
  another): that is the limit of a signature without a frame.

An entry's signatures are those it records and those its case shows when
replayed on the installed Starlette (`known_bugs` replays each entry that
affects it), so an entry needs no hand-written signature, and frames that
moved between releases still match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asgifuzz._corpus.entries import Entry, load_corpus, starlette_version
from asgifuzz._errors import AsgiFuzzError
from asgifuzz._oracles.failures import failure_of
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case
from asgifuzz.models._parts import EXTENSION_ENDPOINT_KINDS

#: Where a wheel carries the corpus (pyproject.toml maps ``corpus/`` there).
_IN_WHEEL = Path(__file__).resolve().parent / "shipped"
#: The repository's corpus, for a checkout or an editable install.
_IN_CHECKOUT = Path(__file__).resolve().parents[2] / "corpus"


def shipped_corpus() -> Path | None:
    """The corpus asgifuzz comes with: inside the installed package (a wheel),
    else the checkout's ``corpus/`` (an editable install), else None."""
    for directory in (_IN_WHEEL, _IN_CHECKOUT):
        if directory.is_dir() and any(directory.glob("*.json")):
            return directory
    return None


def match_key(signature: str, case: Case) -> str:
    """What a signature is matched by (see the module's docstring)."""
    key, _, frames = signature.partition("@")
    if frames:
        innermost = frames.split(";")[-1]  # an older signature kept three
        path, _, function = innermost.rpartition(":")
        path = re.sub(r":\d+$", "", path)  # a line number, if one was written
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        return f"{key}@{name}:{function.rsplit('.', 1)[-1]}"
    user = sorted({la.kind for la in case.stack.layers if la.family == "user"})
    if case.app:
        user.append(f"app:{case.app}")
    if case.endpoint.kind in EXTENSION_ENDPOINT_KINDS:  # the extension it needs
        user.append(f"endpoint:{case.endpoint.kind}")
    return f"{key}#{'+'.join(user)}"


@dataclass(frozen=True)
class KnownBug:
    """A corpus entry, as far as labelling findings goes."""

    entry: str  # the file name
    status: str
    upstream: str
    title: str
    #: The `match_key`s of the failures the entry shows.
    matches: frozenset[str]
    #: The entry's root cause (`Entry.cause`), or "" for one of its own.
    cause: str = ""

    @property
    def bug(self) -> str:
        """What tells bugs apart: the cause several entries share, else the entry."""
        return self.cause or self.entry

    @property
    def label(self) -> str:
        """``known-upstream`` for an entry of that status or ``fixed``, else ``new``."""
        return "new" if self.status == "new" else "known-upstream"


@dataclass(frozen=True)
class KnownBugs:
    """The corpus entries that affect one Starlette release, to label findings."""

    bugs: tuple[KnownBug, ...] = ()
    #: The directories they came from, and the release, for the summary.
    directories: tuple[Path, ...] = ()
    version: str = ""

    def __bool__(self) -> bool:
        return bool(self.bugs)

    def match(self, signature: str, case: Case) -> KnownBug | None:
        """The entry one signature (in a finding's shrunk case) is, or None; a
        known-upstream entry wins over another one."""
        key = match_key(signature, case)
        found = [b for b in self.bugs if key in b.matches]
        found.sort(key=lambda b: b.label != "known-upstream")
        return found[0] if found else None

    def match_any(
        self, signatures: Iterable[str], case: Case
    ) -> tuple[KnownBug, str] | None:
        """The entry a finding is, and which of its signatures matched it: the
        first of them (headline first, then by invariant rank) that matches an
        entry. One root cause shows under several keys, and the headline may be
        another than the one the entry records (``I8:escaped-``, the effect of
        a hidden disconnect, outranks the ``I9:endpoint`` of the entry)."""
        for signature in signatures:
            bug = self.match(signature, case)
            if bug is not None:
                return bug, signature
        return None


def entry_matches(entry: Entry, *, replay: bool = True) -> frozenset[str]:
    """The match keys of an entry: its recorded signature (or key), and the
    headline of what its case shows when replayed on its backends here."""
    keys = {match_key(entry.signature or entry.key, entry.case)}
    if replay and not entry.targets:  # (a user's code is not allowed here)
        try:
            verdict = judge(entry.case, entry.backends)
        except AsgiFuzzError:
            verdict = None
        failure = (
            None if verdict is None else failure_of(verdict.violations, entry.backends)
        )
        if failure is not None and entry.key in failure.keys:
            keys.add(match_key(failure.signature, entry.case))
    return frozenset(keys)


def known_bugs(
    directories: Iterable[Path], version: str | None = None, *, replay: bool = True
) -> KnownBugs:
    """The entries of ``directories`` that affect ``version`` (default: the
    installed Starlette), each replayed once to learn its signature."""
    version = version or starlette_version()
    dirs = tuple(dict.fromkeys(directories))
    bugs = []
    for directory in dirs:
        for entry in load_corpus(directory):
            if entry.affects(version):
                bugs.append(
                    KnownBug(
                        entry=entry.path.name,
                        status=entry.status,
                        upstream=entry.upstream,
                        title=entry.title,
                        matches=entry_matches(entry, replay=replay),
                        cause=entry.cause,
                    )
                )
    return KnownBugs(tuple(bugs), dirs, version)
