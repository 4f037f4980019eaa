"""Rarest conjunctions: how often each pair and triple of features comes up.

Samples N cases from `cases()` with swarm generation off ("before") and on
("after"), side by side in one run, and prints, for each, the probability of
every pair and triple of features and the rarest of them. The features of a
case are what swarm generation turns on and off:

- ``family:bhm`` / ``family:asgi``: some layer is a `BaseHTTPMiddleware` / its
  pure-ASGI twin;
- ``layer:<behaviour>`` (either family) and ``layer:starlette.<name>``;
- ``endpoint:<kind>``, ``disconnect:<kind>``, ``server:<name>``;
- ``content:<group>``: the group of the request's last content-type header
  (`asgifuzz.strategies._vocabulary.CONTENT_GROUPS`), ``content:none`` without one.

A case has one endpoint, disconnect, server and content feature, and any number
of layer features: the conjunctions the strategies can combine are those with
at most one feature of each of the four single-valued categories.

The cases are drawn as Hypothesis draws them under ``--backend``:
``independent`` (default: `asgifuzz.strategies._independent`, each case drawn
afresh, the distribution the strategies define) or ``hypothesis`` (its engine,
which follows most novel cases with mutations of them and starts with small
cases: a sample of near copies).

    python benchmarks/conjunctions.py [--cases 20000] [--rarest 15]
        [--backend independent|hypothesis] [--json PATH] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import _machine  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from asgifuzz.models import (  # noqa: E402
    DISCONNECTS,
    ENDPOINT_KINDS,
    LAYER_KINDS,
    SERVERS,
    Case,
)
from asgifuzz.strategies import _independent, cases  # noqa: E402
from asgifuzz.strategies._vocabulary import CONTENT_GROUPS, content_group  # noqa: E402

#: The categories with exactly one feature per case.
SINGLE = ("endpoint", "content", "disconnect", "server")


def all_features() -> list[str]:
    """Every feature a case can have, in registry order."""
    behaviours = dict.fromkeys(
        f"layer:{k.partition('.')[2]}"
        if not k.startswith("starlette.")
        else f"layer:{k}"
        for k in LAYER_KINDS
    )
    return [
        "family:bhm",
        "family:asgi",
        *behaviours,
        *(f"endpoint:{k}" for k in ENDPOINT_KINDS),
        *(f"content:{g}" for g in ("none", *CONTENT_GROUPS)),
        *(f"disconnect:{k}" for k in DISCONNECTS),
        *(f"server:{k}" for k in SERVERS),
    ]


def features(case: Case) -> frozenset[str]:
    """The features of one case (see the module docstring)."""
    out = set()
    for layer in case.stack.layers:
        if layer.family == "starlette":
            out.add(f"layer:{layer.kind}")
        else:
            out.update((f"family:{layer.family}", f"layer:{layer.behaviour}"))
    types = [v for n, v in case.request.headers if n.lower() == "content-type"]
    out.add(f"content:{content_group(types[-1]) if types else 'none'}")
    out.add(f"endpoint:{case.endpoint.kind}")
    out.add(f"disconnect:{case.client.disconnect}")
    out.add(f"server:{case.server.name}")
    return frozenset(out)


def combinable(combo: Iterable[str]) -> bool:
    """Whether a case can hold all of ``combo``: at most one feature of each
    single-valued category."""
    seen = Counter(f.partition(":")[0] for f in combo)
    return all(seen[c] <= 1 for c in SINGLE)


#: ``--backend``'s choices: the Hypothesis backend of each name.
BACKENDS = {"independent": _independent.register(), "hypothesis": "hypothesis"}


def sample(
    n: int, *, swarm: bool, backend: str = "independent"
) -> list[frozenset[str]]:
    """The features of ``n`` generated cases (generation only, no database)."""
    out: list[frozenset[str]] = []

    @settings(
        backend=BACKENDS[backend],
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(swarm=swarm))
    def one(case: Case) -> None:
        out.append(features(case))

    one()
    return out


def probabilities(
    samples: Sequence[frozenset[str]], size: int, universe: Sequence[str]
) -> dict[tuple[str, ...], float]:
    """The probability of every combinable conjunction of ``size`` features."""
    counts: Counter[tuple[str, ...]] = Counter()
    order = {f: i for i, f in enumerate(universe)}
    for fs in samples:
        counts.update(itertools.combinations(sorted(fs, key=order.__getitem__), size))
    return {
        combo: counts[combo] / len(samples)
        for combo in itertools.combinations(universe, size)
        if combinable(combo)
    }


def summary(probs: dict[tuple[str, ...], float], rarest: int) -> dict[str, Any]:
    """Counts below thresholds and the rarest conjunctions."""
    values = sorted(probs.items(), key=lambda kv: (kv[1], kv[0]))
    return {
        "conjunctions": len(values),
        "never": sum(p == 0 for _, p in values),
        "below_0.1%": sum(p < 0.001 for _, p in values),
        "below_1%": sum(p < 0.01 for _, p in values),
        "min": values[0][1] if values else 0.0,
        "median": values[len(values) // 2][1] if values else 0.0,
        "rarest": [[" & ".join(c), p] for c, p in values[:rarest]],
    }


def measure(n: int, rarest: int = 15, backend: str = "independent") -> dict[str, Any]:
    """Both arms, interleaved in halves (so that load hits both alike)."""
    universe = all_features()
    arms: dict[str, list[frozenset[str]]] = {"off": [], "on": []}
    took = dict.fromkeys(arms, 0.0)
    for half in (n - n // 2, n // 2):
        for arm in arms:
            started = time.perf_counter()
            arms[arm] += sample(half, swarm=arm == "on", backend=backend)
            took[arm] += time.perf_counter() - started
    result: dict[str, Any] = {
        "cases": n,
        "features": len(universe),
        "backend": backend,
        "arms": {},
    }
    for arm, samples in arms.items():
        marginal = {f: sum(f in s for s in samples) / len(samples) for f in universe}
        result["arms"][arm] = {
            "sampled": len(samples),
            "generation_s": round(took[arm], 1),
            "rarest_features": sorted(marginal.items(), key=lambda kv: kv[1])[:rarest],
            "pairs": summary(probabilities(samples, 2, universe), rarest),
            "triples": summary(probabilities(samples, 3, universe), rarest),
        }
    return result


def _pct(p: float) -> str:
    return f"{100 * p:.2f} %"


def markdown(result: dict[str, Any], command: str, machine: dict[str, Any]) -> str:
    """The result as Markdown: one table of counts, then the rarest of each arm."""
    off, on = result["arms"]["off"], result["arms"]["on"]
    lines = [
        "# Rarest conjunctions",
        "",
        f"`{command}`",
        "",
        f"{result['cases']} cases per arm, {result['features']} features, "
        f"drawn under the {result.get('backend', 'hypothesis')} backend.",
        "",
        "| | swarm off | swarm on |",
        "|---|---|---|",
    ]
    for size in ("pairs", "triples"):
        for row in ("conjunctions", "never", "below_0.1%", "below_1%"):
            lines.append(f"| {size}: {row} | {off[size][row]} | {on[size][row]} |")
        for row in ("min", "median"):
            lines.append(
                f"| {size}: {row} | {_pct(off[size][row])} | {_pct(on[size][row])} |"
            )
    lines.append(f"| generation, s | {off['generation_s']} | {on['generation_s']} |")
    for arm, label in (("off", "swarm off"), ("on", "swarm on")):
        data = result["arms"][arm]
        for size in ("pairs", "triples"):
            lines += ["", f"Rarest {size}, {label}:", ""]
            lines += [f"- {_pct(p)} {c}" for c, p in data[size]["rarest"]]
    lines += ["", _machine.markdown(machine), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000, help="cases per arm")
    parser.add_argument("--rarest", type=int, default=15, help="how many to list")
    parser.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default="independent",
        help="how Hypothesis draws the cases (default: independent)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--markdown", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    command = "python benchmarks/conjunctions.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    machine = _machine.describe()
    result = measure(args.cases, args.rarest, args.backend)
    text = markdown(result, command, machine)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"command": command, "machine": machine, **result}, indent=1)
            + "\n"
        )
    if args.markdown is not None:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
