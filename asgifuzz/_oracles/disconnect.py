"""Invariant I9: the disconnect reaches who waits for it."""

from __future__ import annotations

from asgifuzz._oracles.facts import WAITING_KINDS, Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._endpoint import POLL_INTERVAL


def disconnect_delivered(f: Facts) -> list[Violation]:
    """I9: an endpoint waiting for ``http.disconnect`` gets it.

    Policy: it holds for an endpoint that was cancelled before the client
    left, or, polling ``is_disconnected()``, before its next poll: it had no
    chance to look.
    """
    kind = f.case.endpoint.kind
    if kind not in WAITING_KINDS or f.disconnected is None:
        return []
    ended = f.endpoint_end
    if ended is not None and ended.tick < f.disconnected:
        return []  # cancelled or done before the client left: it was not waiting
    if (
        ended is not None
        and f.gone_at is not None
        and kind == "poll_disconnect"
        and ended.kind == "raise"
        and ended.time - f.gone_at < POLL_INTERVAL
    ):
        return []  # cancelled before its next poll: it had no chance to look
    if not f.endpoint_reached or f.endpoint_saw_disconnect:
        return []
    how = (
        "was still waiting when the run's time ran out"
        if f.outcome.hung
        else "never got it"
    )
    return [
        Violation(
            "I9",
            "the client disconnected but the endpoint, waiting for http.disconnect, "
            + how,
            "endpoint",
        )
    ]
