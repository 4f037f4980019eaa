"""Invariant I3: each reader gets the request body as the client sent it, or,
below a user layer that declares ``transforms = ["request-body"]``, as that
layer passed it down; and such a layer reads the client's whole body before
it ends the one it passes down (nothing lost)."""

from __future__ import annotations

from asgifuzz._oracles.facts import Facts, inside, request_bodies
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case


def request_body(f: Facts) -> list[Violation]:
    """I3: what each layer or the endpoint read is what it should get."""
    out: list[Violation] = []
    sent = f.case.request.body_bytes
    declared = f.declared()
    for read in f.reads:
        want, source = sent, f"the client sent {sent[:60]!r} ({len(sent)} bytes)"
        transformer = _transformer_above(f, read.layer) if declared else None
        if transformer is None:
            want = expected_body(f.case, read.layer)
        else:
            want = request_bodies(f.outcome, inside(f.outcome, transformer))[0]
            source = (
                f"{f.boundaries[inside(f.outcome, transformer) - 1]}, which "
                f"transforms the request body, passed down {want[:60]!r} "
                f"({len(want)} bytes)"
            )
        if read.complete and read.data != want:
            out.append(
                Violation(
                    "I3",
                    f"{read.who} read {read.data[:60]!r} ({len(read.data)} bytes) but "
                    f"{source}"
                    + (
                        ""
                        if want == sent or transformer
                        else f"; expected {want!r} (policy)"
                    ),
                )
            )
        elif not read.complete and not want.startswith(read.data):
            out.append(
                Violation(
                    "I3",
                    f"{read.who} read {read.data[:60]!r} before {read.error}, which "
                    f"is not a prefix of what {source.partition(',')[0]} sent "
                    f"({want[:60]!r})",
                )
            )
    return out + [
        v for i, d in enumerate(declared) if d.request_body for v in _lost(f, i)
    ]


def _transformer_above(f: Facts, reader: int | None) -> int | None:
    """The innermost layer above ``reader`` (None: the endpoint) that makes the
    body it reads: a declared request-body transformer (its index), unless a
    `bhm.read_stream` lies between them (policy: then ``b""``; None here)."""
    layers, declared = f.case.stack.layers, f.declared()
    for j in reversed(range(len(layers) if reader is None else reader)):
        if layers[j].kind == "bhm.read_stream":
            return None
        if declared[j].request_body:
            return j
    return None


def _lost(f: Facts, index: int) -> list[Violation]:
    """A request-body transformer that ended the body it passes down before
    the body due to it had reached it whole lost the rest (unless the client
    left first). What is due to it is what a reader in its place gets: the
    client's body, ``b""`` below a `bhm.read_stream` (policy), or what a
    transformer above it passed down. One that had the final message from
    above lost nothing: what was lost above it is not its own (the layer
    above is judged for that, by what it passed down)."""
    below = inside(f.outcome, index)
    made, _, ended = request_bodies(f.outcome, below)
    if ended is None or (f.disconnected is not None and f.disconnected < ended):
        return []
    got, _, whole = request_bodies(f.outcome, below - 1, before=ended)
    if whole is not None:
        return []
    above = _transformer_above(f, index)
    if above is None:
        due = expected_body(f.case, index)
        source = "the client sent" if due == f.case.request.body_bytes else "are due"
    else:
        due = request_bodies(f.outcome, inside(f.outcome, above))[0]
        source = f"{f.boundaries[inside(f.outcome, above) - 1]} passed down"
    if len(got) >= len(due):
        return []
    return [
        Violation(
            "I3",
            f"{f.boundaries[below - 1]}, which transforms the request body, ended "
            f"the body it passes down ({len(made)} bytes) having read {len(got)} of "
            f"the {len(due)} bytes {source}: the rest is lost",
        )
    ]


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
