"""Part of invariant I8: a user layer that declares it buffers or encodes the
response body (``buffers``, ``encodes``; `asgifuzz._targets.declarations`) is
still transparent in what it passes on: the body it sends, decoded from its
``content-encoding``, is the body it got from below, decoded from its own.

Judged per layer, on one run: only when the response it got and the one it
sent are both complete, with the same status (a layer that answers for
itself, say a 500, is not passing a body on), not for ``HEAD`` (the server
drops that body), and only when the codings can be decoded here (``br`` needs
``brotli``, ``zstd`` ``zstandard``). A body that does not decode, or whose
decoded bytes differ from what came from below, is a finding of the layer
that sent it: a broken stream, a lost last chunk.
"""

from __future__ import annotations

from typing import NamedTuple

from asgifuzz._driver.outcome import Outcome
from asgifuzz._oracles.decoding import content_codings, decode, decoder
from asgifuzz._oracles.facts import inside
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets.specs import declarations


class Sent(NamedTuple):
    """A response as it crossed one boundary."""

    status: int | None
    codings: tuple[str, ...]
    body: bytes
    complete: bool


def sent(outcome: Outcome, where: int) -> Sent:
    """The response sent outward through boundary ``where``."""
    status, complete = None, False
    codings: tuple[str, ...] = ()
    body: list[bytes] = []
    for e in outcome.recorder.events:
        m = e.message or {}
        if e.kind != "send" or e.where != where:
            continue
        if m.get("type") == "http.response.start" and status is None:
            status = m.get("status")
            codings = content_codings(m.get("headers", []))
        elif m.get("type") == "http.response.body" and status is not None:
            body.append(bytes(m.get("body", b"")))
            if not m.get("more_body", False):
                complete = True
                break
    return Sent(status, codings, b"".join(body), complete)


def promises(outcome: Outcome) -> list[Violation]:
    """I8 for each user layer that declares it buffers or encodes: what it
    passed on decodes to what it got (see the module's docstring)."""
    case = outcome.case
    if case.request.method.upper() == "HEAD":
        return []
    out: list[Violation] = []
    for i, declared in enumerate(declarations(case)):
        if not (declared.buffers or declared.encodes) or declared.response_body:
            continue
        below = inside(outcome, i)
        got, gave = sent(outcome, below), sent(outcome, below - 1)
        if not (got.complete and gave.complete) or got.status != gave.status:
            continue
        want = decode(got.body, got.codings, whole=True)
        if want is None or decoder(gave.codings) is None:
            continue  # broken below it, or a coding not decodable here
        name = outcome.recorder.boundaries[below - 1]
        what = "declared to " + " and ".join(
            (["buffer"] if declared.buffers else [])
            + ([f"encode {'/'.join(declared.encodes)}"] if declared.encodes else [])
        )
        body = decode(gave.body, gave.codings, whole=True)
        if body is None:
            out.append(
                Violation(
                    "I8",
                    f"{name}, {what}, sent a body that does not decode as "
                    f"content-encoding: {', '.join(gave.codings)} ({len(gave.body)} "
                    "bytes: a broken or unfinished stream)",
                    "body",
                )
            )
        elif body != want:
            tag = "body-" if want.startswith(body) else "body"
            tag = "body+" if body.startswith(want) else tag
            out.append(
                Violation(
                    "I8",
                    f"{name}, {what}, passed on {len(body)} bytes {body[-40:]!r} "
                    f"(decoded) of the {len(want)} {want[-40:]!r} it got from "
                    "below: a buffering or encoding layer passes the body on whole",
                    tag,
                )
            )
    return out
