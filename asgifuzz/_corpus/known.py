"""Known upstream bugs: corpus entries whose failures are not the user's news.

When asgifuzz fuzzes a user's middleware or app, Starlette's own known bugs can
show up too. A ``--known DIR`` corpus names them: an entry with status
``known-upstream`` whose affected releases include the installed Starlette makes
its failure key expected. Matching is by failure key, so a known key also hides
a new bug with the same key: that is why it is opt-in (the curated corpus knows
``I4:response`` on Starlette 1.10.0, which would hide a user's own hang).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from asgifuzz._corpus.entries import load_corpus, starlette_version
from asgifuzz._oracles.violations import Violation


def known_upstream(
    directories: Iterable[Path], version: str | None = None
) -> dict[str, str]:
    """Failure key -> the entries (file names) that make it expected on ``version``
    (default: the installed Starlette), from every ``known-upstream`` entry."""
    version = version or starlette_version()
    known: dict[str, str] = {}
    for directory in directories:
        for entry in load_corpus(directory):
            if entry.status == "known-upstream" and entry.affects(version):
                name = entry.path.name
                known[entry.key] = (
                    f"{known[entry.key]}, {name}" if entry.key in known else name
                )
    return known


def split_known(
    violations: Mapping[str, list[Violation]], known: Mapping[str, str]
) -> tuple[dict[str, list[Violation]], set[str]]:
    """The violations without the known keys, and the known keys seen.

    A disagreement of the backends (I10) that only known keys explain is known
    too: Starlette's trio-only leak makes asyncio and trio differ.
    """
    if not known:
        return dict(violations), set()
    seen = {v.key for vs in violations.values() for v in vs if v.key in known}
    if not seen:
        return dict(violations), set()
    per_backend = {
        b: {v.key for v in vs} for b, vs in violations.items() if b != "both"
    }
    keysets = list(per_backend.values())
    differ: set[str] = set()
    if keysets:
        differ = set().union(*keysets) - set(keysets[0]).intersection(*keysets[1:])
    out = {}
    for backend, vs in violations.items():
        kept = [v for v in vs if v.key not in known]
        if backend == "both" and differ <= set(known):
            if any(v.invariant == "I10" for v in kept):
                seen.add("I10")
            kept = [v for v in kept if v.invariant != "I10"]
        out[backend] = kept
    return out, seen
