"""The confirmations of a corpus on real servers, recorded and shown.

`record` writes what ``asgifuzz confirm --record`` measured into an entry's
``confirmed`` field (each server's verdict replaces the one before it, the
other servers' stay). `refresh_reports` then writes them out of the entries,
never by hand: ``reports/servers.md`` beside the corpus (every entry x every
server), and, in each bug report, the section between
``<!-- confirmed: ENTRY ... -->`` and ``<!-- /confirmed -->`` (the table of the
entries that report names there).
"""

from __future__ import annotations

import re
from pathlib import Path

from asgifuzz._corpus.confirmed import SERVER_NAMES, Confirmed
from asgifuzz._corpus.entries import Entry, load_corpus, write_atomically
from asgifuzz._corpus.files import read_json
from asgifuzz._markdown import table

#: The file of the whole corpus' table, in the corpus' ``reports/`` folder.
SERVERS_REPORT = "servers.md"
#: A report's generated section: the entries it names, then their table.
_SECTION = re.compile(
    r"(<!-- confirmed: (?P<names>[\w .-]+?) -->\n).*?(<!-- /confirmed -->)", re.DOTALL
)


def record(path: Path, results: dict[str, Confirmed]) -> None:
    """Store ``results`` (server -> verdict) in the entry at ``path``."""
    data = read_json(path)  # the one loader, with its limits
    known = dict(data.get("confirmed", {}))
    known.update({name: c.to_data() for name, c in results.items()})
    data["confirmed"] = {name: known[name] for name in sorted(known)}
    write_atomically(path, data)


def _same(values: list[str]) -> str:
    """The one value all share ("": they differ, or there is none)."""
    distinct = set(values) - {""}
    return distinct.pop() if len(distinct) == 1 else ""


def servers_table(entries: list[Entry]) -> list[str]:
    """The Markdown table: one row per entry, one column per server that any
    entry was confirmed on (a version all rows share goes into the header)."""
    servers = [s for s in SERVER_NAMES if any(s in e.confirmed for e in entries)]
    records = [c for e in entries for c in e.confirmed.values()]
    starlette = _same([c.starlette for c in records])
    header = ["entry", "key", f"affected (corpus) {starlette}".strip()]
    versions = {
        s: _same([e.confirmed[s].version for e in entries if s in e.confirmed])
        for s in servers
    }
    rows: list[list[object]] = []
    for e in entries:
        shown_in = _same([c.starlette for c in e.confirmed.values()]) or starlette
        cells: list[object] = [f"`{e.path.stem}`", e.key]
        cells.append(("yes" if e.affects(shown_in) else "no") if shown_in else "?")
        for s in servers:
            c = e.confirmed.get(s)
            cell = "-" if c is None else c.cell()
            if c is not None and c.version and not versions[s]:
                cell += f" ({c.version})"
            cells.append(cell)
        rows.append(cells)
    named = [f"{s} {versions[s]}".strip() for s in servers]
    return table([*header, *named], rows)


def _servers_report(entries: list[Entry]) -> str:
    lines = [
        "# The corpus on real servers",
        "",
        "Written by `asgifuzz confirm corpus/*.json --server all --record` from each "
        "entry's `confirmed` field (what the command measured, with a real client on "
        "the real server); do not edit by hand.",
        "",
        *servers_table(entries),
    ]
    return "\n".join(lines) + "\n"


def refresh_reports(directory: Path) -> list[Path]:
    """Rewrite the generated parts of ``directory/reports`` from the entries of
    ``directory``; the files that changed."""
    entries = load_corpus(directory)
    by_name = {e.path.stem: e for e in entries}
    folder = directory / "reports"
    folder.mkdir(exist_ok=True)
    changed = []
    wanted = {folder / SERVERS_REPORT: _servers_report(entries)}
    for report in sorted(folder.glob("*.md")):
        text = report.read_text()

        def section(match: re.Match[str]) -> str:
            names = match.group("names").split()
            chosen = [by_name[n] for n in names if n in by_name]
            body = "\n".join(servers_table(chosen)) if chosen else "(no such entry)"
            return f"{match.group(1)}{body}\n{match.group(3)}"

        wanted.setdefault(report, _SECTION.sub(section, text))
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
