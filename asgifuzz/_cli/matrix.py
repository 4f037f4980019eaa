"""``asgifuzz matrix``: Starlette releases x invariants, judged against the corpus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asgifuzz._campaign.report import write_bytes_atomically
from asgifuzz._corpus.entries import write_atomically
from asgifuzz._releases.matrix import (
    RELEASES,
    Prober,
    build_matrix,
    format_markdown,
    format_text,
)


def add_options(mx: argparse.ArgumentParser) -> None:
    """The options of ``asgifuzz matrix``."""
    mx.description = (
        "Replay the corpus on Starlette releases (cached venvs with the "
        "anyio/trio of their era) and print releases x invariants, with the corpus "
        "entry behind every failing cell. Fuzz results and other matrices merge in."
    )
    mx.add_argument(
        "--releases",
        metavar="V,V,...",
        help=f"releases to replay on; default the headline list ({RELEASES[0]} to "
        f"{RELEASES[-1]}, {len(RELEASES)} releases) unless --installed or --merge",
    )
    mx.add_argument(
        "--installed",
        action="store_true",
        help="replay on the installed Starlette, in this interpreter (no venv)",
    )
    mx.add_argument(
        "--corpus",
        type=Path,
        default=Path("corpus"),
        metavar="DIR",
        help="the corpus whose entries are replayed",
    )
    mx.add_argument(
        "--backend",
        choices=("asyncio", "trio", "both"),
        default="both",
        help="event loop(s) to replay on",
    )
    mx.add_argument(
        "--fuzz",
        type=Path,
        nargs="*",
        default=[],
        metavar="JSON",
        help="fuzz --json results to merge (by their Starlette release)",
    )
    mx.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        metavar="JSON",
        help="matrix --json files (e.g. from CI shards) to merge",
    )
    mx.add_argument("--cache", type=Path, metavar="DIR", help="venv cache folder")
    mx.add_argument("--json", type=Path, metavar="PATH", help="also write JSON")
    mx.add_argument("--markdown", type=Path, metavar="PATH", help="also write Markdown")
    mx.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a release is not as the corpus expects",
    )


def main(args: argparse.Namespace, *, prober: Prober | None = None) -> int:
    """Build and print the matrix (and write ``--json``/``--markdown``): 0, or 1
    with ``--check`` when a release is not as the corpus expects."""
    if args.releases:
        releases = [v.strip() for v in args.releases.split(",") if v.strip()]
    else:
        releases = [] if args.installed or args.merge else list(RELEASES)
    m = build_matrix(
        args.corpus,
        releases=releases,
        installed=args.installed,
        merge=args.merge,
        fuzz=args.fuzz,
        backend=args.backend,
        prober=prober,
        cache=args.cache,
    )
    sys.stdout.write(format_text(m) + "\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(args.json, m.to_data())
    if args.markdown is not None:
        write_bytes_atomically(args.markdown, format_markdown(m).encode())
    surprises = any(m.problems(r) for r in m.rows)
    return 1 if args.check and surprises else 0
