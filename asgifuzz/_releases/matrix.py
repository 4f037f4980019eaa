"""``asgifuzz matrix``: Starlette releases x invariants, and the corpus entry behind
every failing cell.

Each release's row comes from replaying every corpus entry on that release: in a
cached venv with the anyio and trio of its era (`asgifuzz._releases.venvs.VenvCache`, as
bisect does; the venv runs ``python -m asgifuzz._releases.matrix CORPUS BACKEND``, which
prints what each entry showed as JSON), or in this interpreter
(``--installed``, for a nox session or a CI shard that set up the release
itself). Fuzz results (``fuzz --json`` files, one per release) add their
findings, and matrices written by other shards merge in (``--merge``).

A row is *as expected* when every entry fails with its own key inside its
affected ranges and not outside them, and every fuzz finding is a kind of
failure some corpus entry shows on that release; ``--check`` exits 1 otherwise,
naming each problem: a new kind of failure, or a known bug that stopped showing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgifuzz._corpus.entries import Entry, environment, load_corpus, parse_version
from asgifuzz._errors import UsageError
from asgifuzz._markdown import table
from asgifuzz._oracles.registry import INVARIANTS
from asgifuzz._oracles.verdict import judge
from asgifuzz._releases.headline import RELEASES as RELEASES
from asgifuzz._releases.venvs import (
    ReplayError,
    VenvCache,
    output_tail,
    to_stderr,
)
from asgifuzz._types import BACKEND_CHOICES

ProbeData = dict[str, Any]  # what `probe` returns: versions and keys per entry
Prober = Callable[[str], ProbeData]  # release -> probe


def probe(corpus: Path, backends: tuple[str, ...]) -> ProbeData:
    """Replay every entry of ``corpus`` here: the failure keys each one shows.

    Every entry runs on every backend of ``backends`` (not only its own), so a
    bug of one loop also shows as the disagreement of the two (I10).
    """
    shown: dict[str, dict[str, Any]] = {}
    for entry in load_corpus(corpus):
        try:
            verdict = judge(entry.case, backends)
        except Exception as exc:  # a case this release cannot run: no verdict
            shown[entry.path.name] = {
                "keys": [],
                "error": f"{type(exc).__name__}: {exc}",
            }
            continue
        keys = {v.key for vs in verdict.violations.values() for v in vs}
        shown[entry.path.name] = {"keys": sorted(keys), "error": ""}
    return {"versions": environment(), "entries": shown}


def _probe_main(argv: Sequence[str]) -> int:
    """``python -m asgifuzz._releases.matrix CORPUS BACKEND`` (run in a release's venv)."""
    corpus, backend = Path(argv[0]), argv[1]
    sys.stdout.write(json.dumps(probe(corpus, BACKEND_CHOICES[backend])) + "\n")
    return 0


def venv_prober(corpus: Path, backend: str, cache: Path | None) -> Prober:
    """Probe each release in its cached venv (built on first use, as bisect does)."""
    venvs = VenvCache(cache)

    def run(release: str) -> ProbeData:
        venv = venvs.ensure("starlette", release)
        cmd = ["-m", "asgifuzz._releases.matrix", str(corpus.resolve()), backend]
        proc = venvs.run_python(venv, cmd)
        if proc.returncode != 0:
            raise ReplayError(
                f"probing starlette {release} exited {proc.returncode}: "
                f"{output_tail(proc)}"
            )
        data: ProbeData = json.loads(proc.stdout.strip().splitlines()[-1])
        return data

    return run


@dataclass
class Row:
    """One release: what each corpus entry showed there, and what fuzzing found."""

    release: str
    versions: dict[str, str]
    entries: dict[str, dict[str, Any]]  # entry file name -> {"keys", "error"}
    fuzz: dict[str, Any] | None = None  # cases, cases_per_s, keys, interrupted

    def to_data(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "versions": self.versions,
            "entries": self.entries,
            "fuzz": self.fuzz,
        }


@dataclass
class Matrix:
    """The rows, in release order, judged against the corpus."""

    corpus: list[Entry]
    rows: list[Row] = field(default_factory=list)

    def labels(self) -> dict[str, str]:
        """Entry file name -> its short label in the table (E1, E2, ...)."""
        return {e.path.name: f"E{n}" for n, e in enumerate(self.corpus, 1)}

    def add(self, row: Row) -> None:
        self.rows = [r for r in self.rows if r.release != row.release] + [row]
        self.rows.sort(key=lambda r: parse_version(r.release))

    def cell(self, row: Row, invariant: str) -> list[str]:
        """The labels of the entries (and new fuzz findings) failing ``invariant``."""
        labels, found = self.labels(), []
        for entry in self.corpus:
            seen = row.entries.get(entry.path.name, {"keys": []})
            mine = [k for k in seen["keys"] if k.split(":")[0] == invariant]
            if mine:
                own = entry.key in mine
                found.append(labels[entry.path.name] + ("" if own else "~"))
        known = {k for seen in row.entries.values() for k in seen["keys"]}
        for key in (row.fuzz or {}).get("keys", []):
            if key.split(":")[0] == invariant and key not in known:
                found.append(f"new:{key}")
        return found

    def problems(self, row: Row) -> list[str]:
        """Why ``row`` is not as the corpus expects (empty: as expected)."""
        found = []
        for entry in self.corpus:
            seen = row.entries.get(entry.path.name)
            if seen is None:
                continue
            name, shows = entry.path.name, entry.key in seen["keys"]
            if seen["error"]:
                found.append(f"{name}: no verdict ({seen['error']})")
            elif entry.affects(row.release) and not shows:
                found.append(
                    f"{name}: stopped showing {entry.key} inside its affected "
                    f"range {entry.describe_range()} (fixed? narrow the range)"
                )
            elif not entry.affects(row.release) and shows:
                found.append(
                    f"{name}: shows {entry.key} outside its affected range "
                    f"{entry.describe_range()} (widen the range)"
                )
        known = {k for seen in row.entries.values() for k in seen["keys"]}
        for key in (row.fuzz or {}).get("keys", []):
            if key not in known:
                found.append(
                    f"fuzzing found a new kind of failure: {key} (no corpus entry "
                    "shows it on this release; review the new entry)"
                )
        return found

    def to_data(self) -> dict[str, Any]:
        labels = self.labels()
        return {
            "invariants": list(INVARIANTS),
            "entries": {
                labels[e.path.name]: {
                    "path": str(e.path),
                    "key": e.key,
                    "status": e.status,
                    "affected": [list(r) for r in e.affected],
                }
                for e in self.corpus
            },
            "rows": [
                {
                    **r.to_data(),
                    "cells": {i: self.cell(r, i) for i in INVARIANTS},
                    "problems": self.problems(r),
                }
                for r in self.rows
            ],
        }


def _pins(versions: dict[str, str]) -> str:
    return f"{versions.get('anyio', '?')}/{versions.get('trio', '?')}"


def _fuzz_text(row: Row) -> str:
    f = row.fuzz
    if f is None:
        return "-"
    text = f"{f['cases']} cases, {f['cases_per_s']:g}/s, {len(f['keys'])} found"
    return text + (" (interrupted)" if f.get("interrupted") else "")


def _short(cell: list[str]) -> str:
    """The entries failing with their own key, and how many more show it."""
    own = [c for c in cell if not c.endswith("~")]
    more = len(cell) - len(own)
    text = ",".join(own) + (f" +{more}~" if more else "")
    return text.strip() or "."


def _grid(m: Matrix) -> tuple[list[str], list[list[str]]]:
    header = ["release", "anyio/trio", *INVARIANTS, "fuzz", "as expected"]
    rows = []
    for r in m.rows:
        cells = [_short(m.cell(r, i)) for i in INVARIANTS]
        problems = m.problems(r)
        ok = "yes" if not problems else f"NO ({len(problems)})"
        rows.append([r.release, _pins(r.versions), *cells, _fuzz_text(r), ok])
    return header, rows


def _legend(m: Matrix) -> list[str]:
    return [
        f"{m.labels()[e.path.name]} = {e.path.stem} ({e.key}, {e.status}, "
        f"{e.describe_range()})"
        for e in m.corpus
    ]


def format_text(m: Matrix) -> str:
    """The table as aligned plain text, the legend, and every problem."""
    header, rows = _grid(m)
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]
    lines += [
        "",
        ". passes; En fails (the entry's own key); En~ shows this invariant "
        "besides its own (+N~: N of them); new:KEY a fuzz finding no entry explains",
        "",
    ]
    lines += _legend(m)
    for r in m.rows:
        lines += [f"{r.release}: {p}" for p in m.problems(r)]
    return "\n".join(lines)


def format_markdown(m: Matrix) -> str:
    """The same, as Markdown (the entries linked)."""
    header, rows = _grid(m)
    lines = [
        "# asgifuzz version matrix",
        "",
        "Starlette releases x invariants "
        "(I1..I11); a cell names the corpus entries that fail it there.",
        "",
    ]
    lines += table(
        header,
        [
            [
                f"`{c}`" if c != "." and 1 < i <= len(INVARIANTS) + 1 else c
                for i, c in enumerate(row)
            ]
            for row in rows
        ],
    )
    lines += [
        "",
        "`.` passes; `En` fails with the entry's own key; `En~` shows this "
        "invariant besides its own (`+N~`: N of them); `new:KEY` a fuzz finding no entry explains.",
        "",
        "## Corpus entries",
        "",
    ]
    labels = m.labels()
    lines += table(
        ["", "entry", "key", "status", "affected"],
        [
            [
                labels[e.path.name],
                f"[{e.path.stem}]({e.path})",
                f"`{e.key}`",
                e.status,
                e.describe_range(),
            ]
            for e in m.corpus
        ],
    )
    problems = [f"- {r.release}: {p}" for r in m.rows for p in m.problems(r)]
    lines += ["", "## Not as expected", ""] + (
        problems or ["Every release is as the corpus expects."]
    )
    return "\n".join(lines) + "\n"


def fuzz_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``fuzz --json`` file the matrix shows."""
    return {
        "cases": data.get("cases", 0),
        "cases_per_s": data.get("cases_per_s", 0.0),
        "keys": sorted({f["key"] for f in data.get("findings", [])}),
        "interrupted": bool(data.get("interrupted", False)),
    }


def build_matrix(
    corpus_dir: Path,
    *,
    releases: Sequence[str] = (),
    installed: bool = False,
    merge: Sequence[Path] = (),
    fuzz: Sequence[Path] = (),
    backend: str = "both",
    prober: Prober | None = None,
    cache: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Matrix:
    """Rows from ``--merge`` files, then probed releases (or this interpreter),
    then fuzz results attached to the row of their Starlette release."""
    say = log or to_stderr
    m = Matrix(load_corpus(corpus_dir))
    for path in merge:
        for r in _read(path).get("rows", []):
            m.add(Row(r["release"], r["versions"], r["entries"], r.get("fuzz")))
    if installed:
        data = probe(corpus_dir, BACKEND_CHOICES[backend])
        m.add(Row(data["versions"]["starlette"], data["versions"], data["entries"]))
    run = prober or venv_prober(corpus_dir, backend, cache)
    for release in releases:
        say(f"matrix: replaying {len(m.corpus)} entries on starlette {release} ...")
        try:
            data = run(release)
        except ReplayError as exc:
            bad = {"keys": [], "error": str(exc)}
            data = {"versions": {}, "entries": {e.path.name: bad for e in m.corpus}}
        m.add(Row(release, data["versions"], data["entries"]))
    for path in fuzz:
        data = _read(path)
        release = str(data.get("starlette", ""))
        row = next((r for r in m.rows if r.release == release), None)
        if row is None:
            raise UsageError(
                f"--fuzz {path}: Starlette {release or '?'} has no row; add it with "
                "--releases (or --installed in its environment)"
            )
        row.fuzz = fuzz_summary(data)
    return m


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


if __name__ == "__main__":  # pragma: no cover - run in a release's venv (venv_prober)
    sys.exit(_probe_main(sys.argv[1:]))
