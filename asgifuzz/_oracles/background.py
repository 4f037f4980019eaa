"""Invariant I5: background tasks run once, after their response, not blocking it.

"After the response" means after the server's ``send()`` of the final body
message has returned, not when the owner called its own ``send``: a layer in
between (a `BaseHTTPMiddleware` streaming through a memory channel, say) may
still be delivering the response when the owner's ``send`` returns. The driver
records when each server ``send()`` returns (``Recorder.send_returned``).
"""

from __future__ import annotations

from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._record import Background


def background(f: Facts) -> list[Violation]:
    """I5: each background task ran once, after its owner's response was sent,
    to its end, without holding the response back."""
    out: list[Violation] = []
    # Nobody promised to run them: the client left, or a layer above replaced
    # the owner's response (raised, or handled an exception).
    abandoned = (
        f.escaped is not None
        or bool(f.handled)
        or f.cut_short
        or not f.response.complete
    )
    for bg in f.background:
        if bg.runs > 1:
            out.append(
                Violation(
                    "I5",
                    f"the background task of {bg.owner} ran {bg.runs} times",
                    "twice",
                )
            )
        owner_done = _owner_final_body(f, bg)
        early = _early(f, bg, owner_done)
        if early:
            out.append(Violation("I5", early, "early"))
        if abandoned or owner_done is None:
            continue
        if bg.runs == 0:
            out.append(
                Violation(
                    "I5",
                    f"the background task of {bg.owner} never ran, though the "
                    "response was complete and the client connected",
                    "never",
                )
            )
        elif bg.finished is None and bg.raised is None:
            out.append(
                Violation(
                    "I5",
                    f"the background task of {bg.owner} started but never finished "
                    "(cancelled?)",
                    "unfinished",
                )
            )
        elif (
            f.case.endpoint.background == "wait"
            and bg.layer is None
            and not bg.response_complete_at_end
        ):
            out.append(
                Violation(
                    "I5",
                    "the server got the end of the response only after the "
                    "endpoint's 1-second background task had finished: the "
                    "response waited for it",
                    "blocking",
                )
            )
    return out


def _owner_final_body(f: Facts, bg: Background) -> int | None:
    """The tick at which the owner of ``bg`` sent its final body message."""
    if bg.layer is None:
        where = f.endpoint
    else:
        where = bg.layer + 1 if f.case.stack.mode == "starlette" else bg.layer
    for e in f.sends(where):
        m = e.message or {}
        if m.get("type") == "http.response.body" and not m.get("more_body", False):
            return e.tick
    return None


def _early(f: Facts, bg: Background, owner_done: int | None) -> str:
    """Why ``bg`` started too early ("": it did not): before its owner sent
    the final body message, or before the server's ``send()`` of the final
    body message had returned."""
    started = bg.started
    if started is None or owner_done is None:
        return ""
    if started < owner_done:
        return (
            f"the background task of {bg.owner} started (event {started}) "
            f"before its response was sent (event {owner_done})"
        )
    final = _server_final_body(f)
    if final is None or f.cut_short:
        # Policy: a disconnect ends the obligations of a response; the sends to
        # a client that left deliver nothing to wait for (Starlette's
        # StreamingResponse runs its task once it sees the disconnect).
        return ""
    sent, returned = final
    if returned is not None and started <= returned:
        return (
            f"the background task of {bg.owner} started (event {started}) "
            f"before the server's send() of the final body message (event "
            f"{sent}) had returned (after event {returned})"
        )
    return ""


def _server_final_body(f: Facts) -> tuple[int, int | None] | None:
    """The tick of the final body message the server got, and the tick after
    which its ``send()`` returned (None: it raised or never returned)."""
    for n, e in enumerate(f.sends(0)):
        m = e.message or {}
        if m.get("type") == "http.response.body" and not m.get("more_body", False):
            returns = f.outcome.recorder.send_returned
            return e.tick, next((t for t, i in returns if i == n), None)
    return None
