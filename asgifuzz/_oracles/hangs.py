"""Invariant I4: no hang; a stream that no layer buffers streams."""

from __future__ import annotations

from asgifuzz._driver.server import PATIENCE
from asgifuzz._oracles.facts import WAITING_KINDS, Facts
from asgifuzz._oracles.violations import Violation

_CHUNK_LEN = len(b"data: 0\n\n")


def no_hang(f: Facts) -> list[Violation]:
    """I4: the app returns, the response completes within the client's
    patience, and a stream's chunks reach the server as they are made.

    An endpoint that waits for the disconnect and hung is I9's to judge.
    """
    o, kind = f.outcome, f.case.endpoint.kind
    if kind in WAITING_KINDS and o.hung:
        return []
    out: list[Violation] = []
    if o.hung:
        out.append(
            Violation(
                "I4",
                f"the app had not returned after {PATIENCE * 2:g} virtual seconds "
                f"(last event: {f.last_event()})",
                "app",
            )
        )
    elif o.timed_out and (
        not f.response.started if f.app_mode else kind not in WAITING_KINDS
    ):
        out.append(
            Violation(
                "I4",
                f"the client waited {PATIENCE:g} virtual seconds and the response "
                f"was not complete (status={f.response.status}, last event before "
                f"the disconnect: {f.last_event(before=f.disconnected)})",
                "response",
            )
        )
    return out + _streaming(f)


def _streaming(f: Facts) -> list[Violation]:
    """Policy: streaming is promised only by stacks without a buffering layer
    (``replace_body``; GZip, except for ``text/event-stream``), and only while
    the client is connected."""
    ep = f.case.endpoint
    if ep.kind not in ("stream", "raise_streaming") or not ep.interval:
        return []
    if any(
        la.behaviour == "replace_body"
        or (la.kind == "starlette.gzip" and ep.media_type != "text/event-stream")
        for la in f.case.stack.layers
    ):
        return []
    made = f.chunks_made
    chunk_len = _CHUNK_LEN if ep.size is None else ep.size  # a sized chunk's bytes
    sends = [
        (e.tick, len(m.get("body", b"")))
        for e in f.sends(0)
        if (m := e.message or {}).get("type") == "http.response.body"
    ]
    for j in range(len(made) - 1):
        deadline = made[j + 1]
        if f.disconnected is not None and f.disconnected < deadline:
            return []
        got = sum(n for t, n in sends if t < deadline)
        if got < chunk_len * (j + 1):
            return [
                Violation(
                    "I4",
                    f"chunk {j} of the stream had not reached the server ({got} "
                    f"bytes there) when the endpoint made chunk {j + 1}, "
                    f"{ep.interval}s later, though no layer buffers",
                    "streaming",
                )
            ]
    return []
