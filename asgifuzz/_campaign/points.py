"""Disconnect points: a drawn case run again with its client gone at each
point of its own transcript (bounded, systematic; CHESS, Musuvathi et al.,
OSDI 2008, enumerates a bounded number of preemption points the same way).

A case whose client never hangs up is a good stack, endpoint and request for
disconnect bugs, but it tries no disconnect timing; a drawn disconnect tries
one. Its transcript lists every protocol point where a client could leave:
each ``receive()`` the app makes at the server's boundary, the server getting
``http.response.start``, each response body message. `points` turns each into
the `Client` the case model already has for it (``receive`` at the n-th call,
``response_start``, ``body_message`` after the n-th message), adds a few
checkpoint counts (the client gone after 1, 2, 4, ... scheduler checkpoints,
below the transcript's length), and keeps at most `MAX_POINTS` of them,
evenly spread. `variants` are the case with each: ordinary cases, which replay
and shrink like any other, and which Hypothesis reaches again from the drawn
case (the points are a function of its transcript, which replays identically).

Shrinking runs the points again for every candidate: 16 runs for each one
that passes. So once a round has raised a failure, the rest of it tries only
the points that failed in it (``only``): a candidate that fails at one of
them still fails, the final replay too (the set only grows within a round),
and a shrink costs one run per candidate, or a few. The next round tries
every point again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from asgifuzz._campaign.task import MAX_POINTS
from asgifuzz._driver.extensions import PATHSEND, ZEROCOPYSEND
from asgifuzz._driver.outcome import Outcome
from asgifuzz.models import Case
from asgifuzz.models._parts import Client

__all__ = ["MAX_POINTS", "points", "spread", "variants"]

#: The most checkpoint counts among the points (1, 2, 4, 8).
MAX_CHECKPOINT_POINTS = 4


#: The messages the server counts as the response's body messages (a client
#: of ``body_message`` N leaves after N + 1 of them).
BODY_MESSAGES = ("http.response.body", PATHSEND, ZEROCOPYSEND)


def points(outcome: Outcome) -> list[Client]:
    """Every point of ``outcome``'s transcript where its client could hang up,
    in the order they happened, then the checkpoint counts."""
    found: list[Client] = []
    receives = bodies = 0
    events = outcome.recorder.events
    for event in events:
        if event.where != 0:
            continue
        if event.kind == "receive":
            found.append(Client("receive", receives))
            receives += 1
        elif event.kind == "send" and event.message is not None:
            kind = event.message.get("type")
            if kind == "http.response.start":
                found.append(Client("response_start"))
            elif kind in BODY_MESSAGES:
                found.append(Client("body_message", bodies))
                bodies += 1
    steps = 1
    while steps < len(events) and steps < 1 << MAX_CHECKPOINT_POINTS:
        found.append(Client("checkpoints", steps))
        steps *= 2
    return found


def spread(items: list[Client], limit: int) -> list[Client]:
    """At most ``limit`` of ``items``, evenly spread, the first and the last
    among them (all of them when there are no more than ``limit``)."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return items[:limit]
    last = len(items) - 1
    picked = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [items[i] for i in picked]


def variants(
    case: Case,
    outcome: Outcome,
    limit: int = MAX_POINTS,
    only: Collection[Client] | None = None,
) -> list[Case]:
    """``case`` (whose client never hangs up) with its client gone at each of
    at most ``limit`` points of ``outcome``, its run (of those in ``only``,
    if given); none for another client."""
    if case.client.disconnect != "never" or limit <= 0:
        return []
    found = points(outcome)
    if only is not None:
        found = [c for c in found if c in only]
    return [replace(case, client=c) for c in spread(found, limit)]
