"""The garbage collector around a run: paused, and the old objects frozen.

A run pauses the collector and freezes what exists before it (``gc.freeze()``),
so that one generation-0 collection afterwards looks only at what the run
allocated, and finds every cycle the run left behind (a leaked stream kept alive
by a traceback, say). But ``gc.unfreeze()`` puts everything back in the
oldest generation, past the count CPython keeps of the objects that reach it
(it collects the oldest generation once that count reaches a quarter of the
objects that survived the last full collection). So young garbage (a
Hypothesis example's ``ConjectureData`` and choice nodes, strategies built
during a draw, a finished run's recorder and outcome: all of them cycles)
piled up in the oldest generation, never collected: 10 to 18 MB/s of a
``fuzz`` process (issue 11).

`freeze` keeps that count instead: every run adds the young objects it
promotes (the generation-0 count before the freeze and before the collection
at the end of the run: an estimate), and once they reach `RATIO` times the
objects that survived the last full collection, `freeze` makes a full
collection first. The heap stays within about ``1 + RATIO`` times its live
size. The collection runs before the run's window opens (its warnings and
finalizers are not the run's) and depends only on object counts, never on
time, so no verdict depends on it. Freezing was chosen over collecting the
young objects before each run for speed (+19 % cases/s on trio), but most of
that gain was the garbage it never collected: collecting it costs about 20 %
of the CPU time of a fuzz run either way (``gc.collect(0)`` before each run
slightly more than this).

A full collection takes long on a large heap (0.6 s of CPU for 300,000 objects,
seconds on a loaded machine): `paused_s` adds up their wall-clock time, for the
watchdog, which does not count it against the case that happened to trigger it.
"""

from __future__ import annotations

import gc
import time

#: A full collection is due once this many times the objects that survived the
#: last one (at least `MIN_SURVIVORS`) have been promoted by freezes since.
RATIO = 2.0
#: The smallest heap `RATIO` is taken of (a small heap would be collected too often).
MIN_SURVIVORS = 50_000

_promoted = 0
_survivors = MIN_SURVIVORS
#: (seconds of the full collections so far, when the current one started or
#: None): one name, assigned at once, so a signal handler reads it consistently.
_paused: tuple[float, float | None] = (0.0, None)


def paused_s() -> float:
    """Wall-clock seconds spent in `freeze`'s full collections so far (the one
    under way included)."""
    total, since = _paused
    return total if since is None else total + time.perf_counter() - since


def freeze() -> None:
    """Freeze every tracked object, after a full collection if one is due.

    Call with the collector paused right after; `collect_run` then `unfreeze`
    at the end of the run.
    """
    global _promoted, _survivors, _paused
    _promoted += gc.get_count()[0]
    if _promoted > RATIO * _survivors:
        total, start = _paused[0], time.perf_counter()
        _paused = (total, start)
        gc.collect()
        _paused = (total + time.perf_counter() - start, None)
        _promoted = 0
        gc.freeze()
        _survivors = max(MIN_SURVIVORS, gc.get_freeze_count())
    else:
        gc.freeze()


def collect_run() -> int:
    """Collect generation 0, which holds only what the run allocated."""
    global _promoted
    _promoted += gc.get_count()[0]
    return gc.collect(0)


def unfreeze() -> None:
    """Give the frozen objects back to the collector (oldest generation)."""
    gc.unfreeze()
