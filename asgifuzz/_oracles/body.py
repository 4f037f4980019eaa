"""Invariant I3: each reader gets the request body as the client sent it."""

from __future__ import annotations

from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case


def request_body(f: Facts) -> list[Violation]:
    """I3: what each layer or the endpoint read is what it should get."""
    out: list[Violation] = []
    sent = f.case.request.body_bytes
    for read in f.reads:
        want = expected_body(f.case, read.layer)
        if read.complete and read.data != want:
            out.append(
                Violation(
                    "I3",
                    f"{read.who} read {read.data[:60]!r} ({len(read.data)} bytes) but "
                    f"the client sent {sent[:60]!r} ({len(sent)} bytes)"
                    + ("" if want == sent else f"; expected {want!r} (policy)"),
                )
            )
        elif not read.complete and not want.startswith(read.data):
            out.append(
                Violation(
                    "I3",
                    f"{read.who} read {read.data[:60]!r} before {read.error}, which "
                    f"is not a prefix of what the client sent ({sent[:60]!r})",
                )
            )
    return out


def expected_body(case: Case, below_layer: int | None) -> bytes:
    """The body a reader below layer ``below_layer`` (None: the endpoint) gets.

    Policy: a `BaseHTTPMiddleware` that consumed ``request.stream()`` hands the
    next layer an empty body (Starlette documents it).
    """
    layers = case.stack.layers
    last = len(layers) if below_layer is None else below_layer
    if any(la.kind == "bhm.read_stream" for la in layers[:last]):
        return b""
    return case.request.body_bytes
