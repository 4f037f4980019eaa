"""``asgifuzz corpus list|show|merge|minimize|prune``: keep a shared corpus tidy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from asgifuzz._cli import options
from asgifuzz._corpus.confirmed import summary
from asgifuzz._corpus.entries import (
    Entry,
    add_entry,
    case_size,
    load_corpus,
    load_entry,
    starlette_version,
    write_atomically,
)
from asgifuzz._corpus.files import read_json
from asgifuzz._oracles.verdict import judge
from asgifuzz._targets.specs import require
from asgifuzz.models import case_to_data

DEFAULT_DIR = Path("corpus")


def add_options(corpus: argparse.ArgumentParser) -> None:
    """The operations of ``asgifuzz corpus`` and their options."""
    ops = corpus.add_subparsers(dest="op", required=True, help="the operation")
    fmt: dict[str, Any] = {
        "formatter_class": corpus.formatter_class,
        "epilog": corpus.epilog,
    }
    where = "the corpus directory"
    ls = ops.add_parser(
        "list",
        help="per entry: key, status, releases, title; its verdicts on real servers",
        **fmt,
    )
    ls.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR, help=where)
    show = ops.add_parser("show", help="an entry in full", **fmt)
    show.add_argument("path", type=Path, help="a corpus entry (JSON)")
    merge = ops.add_parser(
        "merge", help="merge another corpus in (smallest per signature)", **fmt
    )
    merge.add_argument("other", type=Path, help="the corpus directory to merge in")
    merge.add_argument("--into", type=Path, default=DEFAULT_DIR, help=where)
    mini = ops.add_parser(
        "minimize", help="keep one entry, the smallest, per signature", **fmt
    )
    mini.add_argument(
        "directory", nargs="?", type=Path, default=DEFAULT_DIR, help=where
    )
    prune = ops.add_parser(
        "prune", help="mark (or --drop) new entries that pass now", **fmt
    )
    prune.add_argument(
        "directory", nargs="?", type=Path, default=DEFAULT_DIR, help=where
    )
    prune.add_argument("--drop", action="store_true", help="delete them instead")
    for replaying in (mini, prune):
        options.add_options(replaying, generation=False)


def _raw(entry: Entry) -> dict[str, Any]:
    data: dict[str, Any] = read_json(entry.path)  # the one loader, with its limits
    return data


def _list(directory: Path) -> int:
    for e in load_corpus(directory):
        print(
            f"{e.path.name}  {e.key}  {e.status}  {e.describe_range()}  {e.title[:80]}"
        )
        print(f"  on real servers: {summary(e.confirmed)}")
    return 0


def _merge(other: Path, into: Path) -> int:
    added = kept = 0
    for entry in load_corpus(other):
        data = _raw(entry)
        data.setdefault("signature", entry.signature or entry.key)
        if add_entry(into, data, entry.case) is None:
            kept += 1
        else:
            added += 1
    print(f"merged {other} into {into}: {added} added, {kept} already there as small")
    return 0


#: Replays of an entry before `prune` calls it passing (a flaky entry fails some).
PRUNE_RUNS = 3


def _fails(entry: Entry) -> bool:
    """Whether ``entry`` still fails now, with its own failure or another (or
    Starlette's, in a case with the user's layers)."""
    verdict = judge(entry.case, entry.backends)
    return verdict.failed or verdict.upstream


def _allowed(entries: list[Entry]) -> list[Entry]:
    """``entries``, after checking that this run allows every user target they
    name (`UsageError` with the option that allows it, before any change)."""
    for entry in entries:
        require(entry.case, str(entry.path), entry.targets)
    return entries


def _minimize(directory: Path) -> int:
    groups: dict[tuple[str, bool], list[Entry]] = {}
    for entry in _allowed(load_corpus(directory)):
        # Starlette's failure in a user's case (with a swapped case) and the
        # user's own of one signature are two failures, as in the fuzz loop.
        ident = (entry.signature or entry.key, entry.swapped is not None)
        groups.setdefault(ident, []).append(entry)
    kept = 0
    for entries in groups.values():
        entries.sort(key=lambda e: case_size(e.case))
        # The smallest entry that still fails stands for the others (so no
        # failure that shows now is lost); when none fails now, the smallest.
        keeper = entries[0]
        if len(entries) > 1:
            keeper = next((e for e in entries if _fails(e)), entries[0])
        kept += 1
        for entry in entries:
            if entry is not keeper:
                entry.path.unlink()
                print(
                    f"dropped {entry.path.name} ({keeper.path.name} has its "
                    "signature and is smaller, or fails where it does not)"
                )
    print(f"{kept} entries, one per signature")
    return 0


def _prune(directory: Path, drop: bool) -> int:
    version = starlette_version()
    for entry in _allowed(load_corpus(directory)):
        if entry.status != "new":
            continue
        if any(_fails(entry) for _ in range(PRUNE_RUNS)):
            continue  # still failing (maybe differently, maybe sometimes): kept
        if drop:
            entry.path.unlink()
            print(f"dropped {entry.path.name}: passes on Starlette {version}")
        else:
            data = _raw(entry)
            data["status"] = "fixed"
            data["notes"] = (
                data.get("notes", "") + f" Passes on Starlette {version}."
            ).strip()
            write_atomically(entry.path, data)
            print(f"marked {entry.path.name} fixed: passes on Starlette {version}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run the operation ``args.op``: exit 0."""
    if args.op == "list":
        return _list(args.directory)
    if args.op == "show":
        entry = load_entry(args.path)
        print(
            json.dumps(
                {**_raw(entry), "case": case_to_data(entry.case)},
                indent=2,
                sort_keys=True,
            )
        )
        return 0
    if args.op == "merge":
        return _merge(args.other, args.into)
    options.config_from_args(args).allow()  # the user's targets the entries name
    if args.op == "minimize":
        return _minimize(args.directory)
    return _prune(args.directory, args.drop)
