"""Invariant I4: no hang; a stream that no layer buffers streams."""

from __future__ import annotations

from asgifuzz._driver.server import PATIENCE
from asgifuzz._oracles.facts import WAITING_KINDS, Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets.declarations import Declaration
from asgifuzz.models import Case


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


def promises_streaming(case: Case, declared: tuple[Declaration, ...] = ()) -> bool:
    """Policy: streaming is promised only by an endpoint that streams with time
    between its chunks, through a stack without a buffering layer
    (``replace_body``; GZip, except for ``text/event-stream``; a user layer
    that declares it buffers the stream's media type, or makes its own
    response body: ``buffers``, ``transforms``: ``declared``)."""
    ep = case.endpoint
    if ep.kind not in ("stream", "raise_streaming") or not ep.interval:
        return False
    if any(d.buffering(ep.media_type) or d.response_body for d in declared):
        return False
    return not any(
        la.behaviour == "replace_body"
        or (la.kind == "starlette.gzip" and ep.media_type != "text/event-stream")
        for la in case.stack.layers
    )


def _streaming(f: Facts) -> list[Violation]:
    """Where `promises_streaming`, and only while the client is connected: a
    chunk is delivered once a client could decode it: for a content-encoded
    stream, what the server has so far, decompressed, holds it (a gzip header
    alone holds nothing). The decoded length is what counts, since a layer may
    transform the bytes (length-preserving)."""
    ep = f.case.endpoint
    if not promises_streaming(f.case, f.declared()):
        return []
    made = f.chunks_made
    if len(made) < 2:
        return []
    sends = f.delivered()
    if sends is None:
        return []  # a coding that cannot be decoded here: not judged
    need = 0
    for j in range(len(made) - 1):
        deadline = made[j + 1]
        if f.disconnected is not None and f.disconnected < deadline:
            return []
        # the endpoint model's chunk j: numbered, or of the endpoint's size
        need += len(b"data: %d\n\n" % j) if ep.size is None else ep.size
        raw, got = max(((r, n) for t, r, n in sends if t < deadline), default=(0, 0))
        if got < need:
            there = f"{raw} bytes there"
            if f.codings:
                there += f", {got} once decoded from {'+'.join(f.codings)}"
            return [
                Violation(
                    "I4",
                    f"chunk {j} of the stream had not reached the server ({there}) "
                    f"when the endpoint made chunk {j + 1}, {ep.interval}s later, "
                    "though no layer buffers",
                    "streaming",
                )
            ]
    return []
