"""The garbage collector around a run: paused, with generation 0 left to the run.

A run pauses the collector, so nothing the run allocates leaves generation 0,
and one generation-0 collection at its end finds every cycle the run left
behind (a leaked stream kept alive by a traceback, say) inside the run's
window, where its warnings and finalizers are the run's. For that, generation 0
must hold only what the run allocates: `before_run` collects it first (what
survives moves to generation 1; this is before the window opens, so those
finalizers are not the run's). Everything else is CPython's own generational
policy, so the heap stays bounded as in any Python program; but an explicit
collection resets the count that starts CPython's own, so `before_run`
collects generation 1 as well when its count is due (a replay loop allocates
too little between runs to start one). The oldest generation is CPython's
alone (its rule: once a quarter more objects reached it), which generating a
case starts often enough.

The first run also freezes what the process holds by then (``gc.freeze()``
after a full collection, once): the modules, classes and functions imported,
Hypothesis' strategies. Nearly all of them live as long as the process (what
does not, such as the first example's data or, under the pytest plugin, the
first test's objects, stays: a bounded cost, paid once), and the collections of
the oldest generation no longer walk them (in ``benchmarks/throughput.py``
about 54,000 objects are frozen; about 3,000 stay live beside them).

History (issue 11): the driver used to ``gc.freeze()`` before every run and
``gc.unfreeze()`` after it, which is cheap, but unfreezing puts everything in
the oldest generation past CPython's count of the objects that reach it, so
young garbage (a Hypothesis example's ``ConjectureData`` and choice nodes, a
finished run's recorder and outcome: all of them cycles) was never collected
(10 to 18 MB/s of a ``fuzz`` process). Counting the promoted objects and
collecting everything once they reached twice the survivors bounded it, but
those full collections walked the whole heap: 14 to 17 % of the CPU time of
400 full-pipeline cases, against 8 to 9 % here (gc callbacks timing every
collection, generation included). Collecting depends only on object counts,
never on time, so no verdict depends on it.

A collection takes long on a large heap (the first, full one: 0.6 s of CPU for
300,000 objects, seconds on a loaded machine): `paused_s` adds up the
wall-clock time of `before_run`'s collections, for the watchdog, which does
not count it against the case that happened to trigger it.
"""

from __future__ import annotations

import gc
import time

_frozen = False
#: (seconds of the collections so far, when the current one started or None):
#: one name, assigned at once, so a signal handler reads it consistently.
_paused: tuple[float, float | None] = (0.0, None)


def paused_s() -> float:
    """Wall-clock seconds spent in `before_run`'s collections so far (the one
    under way included)."""
    total, since = _paused
    return total if since is None else total + time.perf_counter() - since


def _collect(generation: int) -> None:
    global _paused
    total, start = _paused[0], time.perf_counter()
    _paused = (total, start)
    gc.collect(generation)
    _paused = (total + time.perf_counter() - start, None)


def before_run() -> None:
    """Make generation 0 hold only what the run about to start allocates (and,
    before the process's first run, freeze what exists). Pause the collector
    right after (``gc.disable()``); `collect_run` at the end of the run."""
    global _frozen
    if not _frozen:
        _frozen = True
        _collect(2)
        gc.freeze()
    else:
        # Explicit collections reset the count that starts CPython's own, so a
        # loop with little between its runs (a replay) would never collect
        # generation 1: collect it here when CPython would.
        _collect(1 if gc.get_count()[1] > gc.get_threshold()[1] else 0)


def collect_run() -> int:
    """Collect generation 0, which holds only what the run allocated."""
    return gc.collect(0)
