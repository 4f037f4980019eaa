"""Markdown for the reports (fuzz reports, the version matrix): imports nothing of
asgifuzz, so the campaign and the release tools share it without importing each
other."""

from __future__ import annotations


def cell(text: object) -> str:
    """One table cell: pipes escaped, on one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A Markdown table (cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines
