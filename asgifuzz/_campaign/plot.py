"""The PNG plot of a fuzz run's report: cases/s and distinct failures over time
(matplotlib, an optional extra)."""

from __future__ import annotations

import io
import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgifuzz._campaign.progress import Sample

NO_MATPLOTLIB = "matplotlib is not installed (pip install 'asgifuzz[plot]')"


def plot_png(samples: list[Sample]) -> bytes:
    """Cases/s and distinct failures over time, as PNG bytes.

    Raises `ImportError` without matplotlib and `ValueError` with fewer than two
    samples (a run too short to show a trend).
    """
    if len(samples) < 2:
        raise ValueError("the run was too short to sample (under a second)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    pairs = list(itertools.pairwise(samples))
    times = [b.t for _, b in pairs]
    rates = [(b.cases - a.cases) / (b.t - a.t) if b.t > a.t else 0.0 for a, b in pairs]
    top.plot(times, rates, color="tab:blue")
    top.set_ylabel("cases/s")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    bottom.step(
        [s.t for s in samples],
        [s.failures for s in samples],
        where="post",
        color="tab:red",
    )
    bottom.set_ylabel("distinct failures")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlabel("seconds")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    fig.suptitle("asgifuzz: throughput and failures over time")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
