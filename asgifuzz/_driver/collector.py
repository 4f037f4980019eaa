"""The garbage collector around a run: paused, with generation 0 left to the run.

A run pauses the collector, so nothing the run allocates leaves generation 0,
and one generation-0 collection at its end finds every cycle the run left
behind (a leaked stream kept alive by a traceback, say) inside the run's
window, where its warnings and finalizers are the run's. For that, generation 0
must hold only what the run allocates: `before_run` collects it first (what
survives moves to generation 1; this is before the window opens, so those
finalizers are not the run's). Everything else is CPython's own generational
policy, so the heap stays bounded as in any Python program.

The first run also freezes what the process holds by then (``gc.freeze()``
after a full collection, once): the modules, classes and functions imported,
Hypothesis' strategies. They live as long as the process, and the collections
of the oldest generation no longer walk them: those collections cost about a
third of their time on a fuzz process (about 90,000 objects frozen, about
35,000 left to the collector).

History (issue 11): the driver used to ``gc.freeze()`` before every run and
``gc.unfreeze()`` after it, which is cheap, but unfreezing puts everything in
the oldest generation past CPython's count of the objects that reach it, so
young garbage (a Hypothesis example's ``ConjectureData`` and choice nodes, a
finished run's recorder and outcome: all of them cycles) was never collected
(10 to 18 MB/s of a ``fuzz`` process). A count of the promoted objects with a
full collection at twice the survivors bounded it, at about 15 % of the CPU
time of a case (``benchmarks/throughput.py``, full mode); collecting
generation 0 before each run costs less than those full collections.
Collecting depends only on object counts, never on time, so no verdict
depends on it.
"""

from __future__ import annotations

import gc

_frozen = False


def before_run() -> None:
    """Make generation 0 hold only what the run about to start allocates (and,
    before the process's first run, freeze what exists). Pause the collector
    right after (``gc.disable()``); `collect_run` at the end of the run."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
    else:
        gc.collect(0)


def collect_run() -> int:
    """Collect generation 0, which holds only what the run allocated."""
    return gc.collect(0)
