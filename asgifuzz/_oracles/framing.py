"""Invariant I11: the response's framing follows HTTP (RFC 9110).

What an ASGI app owes the server, as opposed to what the server does itself:

- A response with status 1xx, 204 or 304 has no content (RFC 9110 §6.4.1,
  §15.2, §15.3.5, §15.4.5): the app sends no body bytes with it, and a 1xx or
  204 declares no content either (§8.6: no ``content-length``; a ``0`` is
  redundant and let through). Real servers do not all forgive it: uvicorn's
  h11 protocol raises ``LocalProtocolError`` ("Too much data for declared
  Content-Length"), its httptools protocol raises "Response content longer
  than Content-Length", or, given a ``content-length``, writes the bytes after
  the headers, where a keep-alive client reads them as the next response;
  hypercorn drops them (``suppress_body``). A 304 may carry the
  ``content-length`` of the 200 it stands for (§8.6), which one run cannot
  know: not judged.
- A response to ``HEAD`` has no content either (§9.3.2), but that is the
  server's work: Starlette's responses send the body they would send for GET,
  and uvicorn (``data = b"" if method == "HEAD"``) and hypercorn drop it. So
  body bytes on a HEAD response are no finding, and its ``content-length``,
  which must be the length GET would send (§8.6), is not judged (that needs
  the GET run).
- Any other response's ``content-length``, if it has one, is one decimal
  number (several equal values count as one, §8.6) and equals the number of
  body bytes the app sent, once the response is complete (RFC 9112 §6.3:
  fewer bytes is an incomplete message, more is the start of the next one;
  uvicorn raises "Response content longer/shorter than Content-Length").

Judged on what the app sent the server (boundary 0), unless the client left
before the response was complete (a disconnect ends the obligations of a
response); the message names the innermost boundary whose messages already
break the rule, i.e. the layer that broke it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._record import Event

#: The RFC 9110 section that says each status has no content.
NO_CONTENT = {204: "§15.3.5", 304: "§15.4.5"}


class Framing:
    """What one side of a boundary sent: status, content-length values, bytes."""

    __slots__ = ("complete", "lengths", "size", "status")

    def __init__(self, sends: Sequence[Event]) -> None:
        self.status: int | None = None
        self.lengths: list[bytes] = []
        self.size = 0
        self.complete = False
        for e in sends:
            m = e.message or {}
            kind = m.get("type")
            if kind == "http.response.start" and self.status is None:
                status = m.get("status")
                self.status = status if type(status) is int else None
                self.lengths = [
                    h[1]
                    for h in m.get("headers", [])
                    if len(h) == 2
                    and isinstance(h[0], bytes)
                    and isinstance(h[1], bytes)
                    and h[0].lower() == b"content-length"
                ]
            elif kind == "http.response.body" and not self.complete:
                body = m.get("body", b"")
                self.size += len(body) if isinstance(body, bytes | bytearray) else 0
                self.complete = not m.get("more_body", False)

    def no_body(self, head: bool) -> str:
        """Why this response breaks the no-content rule of its status ("": it
        does not)."""
        status = self.status
        if status is None or not (status < 200 or status in NO_CONTENT):
            return ""
        section = "§15.2" if status < 200 else NO_CONTENT[status]
        rule = f"RFC 9110 §6.4.1, {section}: a {status} response has no content"
        if self.size and not head:
            return f"{self.size} body bytes with status {status} ({rule})"
        declared = [v for v in self.lengths if v.strip() != b"0"]
        if declared and status != 304:
            value = declared[0].decode("latin-1")
            return (
                f"content-length: {value} with status {status} ({rule}; §8.6: "
                f"no content-length in a {status} response)"
            )
        return ""

    def content_length(self, head: bool) -> str:
        """Why this response's content-length is wrong ("": it is not, or it
        cannot be judged)."""
        status = self.status
        if (
            head
            or not self.lengths
            or not self.complete
            or status is None
            or status < 200
            or status in NO_CONTENT
        ):
            return ""
        values = sorted({v.strip() for v in self.lengths})
        shown = ", ".join(v.decode("latin-1") for v in values)
        if len(values) > 1:
            return f"content-length values disagree ({shown}; RFC 9110 §8.6)"
        if not values[0].isdigit():
            return f"content-length: {shown} is not a decimal number (RFC 9110 §8.6)"
        if int(values[0]) != self.size:
            return (
                f"content-length: {shown} but {self.size} body bytes in a complete "
                "response (RFC 9110 §8.6, RFC 9112 §6.3)"
            )
        return ""


#: The rules, by tag, in the order they are reported.
RULES = (("no-body", Framing.no_body), ("content-length", Framing.content_length))


def framing(f: Facts) -> list[Violation]:
    """I11: no content where the status forbids it; a content-length that
    matches the bytes sent."""
    if f.cut_short or not f.sends(0):
        return []  # policy: a disconnect ends the obligations of a response
    head = f.case.request.method.upper() == "HEAD"
    out: list[Violation] = []
    server = Framing(f.sends(0))
    for tag, rule in RULES:
        what = rule(server, head)
        if what:
            where = _origin(f, rule, head)
            out.append(Violation("I11", f"the server got {what}; {where}", tag))
    return out


def _origin(f: Facts, rule: Callable[[Framing, bool], str], head: bool) -> str:
    """Which layer broke ``rule``: the innermost boundary such that it and
    every boundary outside it break the rule, and what the one inside it sent."""
    k = 0
    while (
        k + 1 < len(f.sent) and f.sends(k + 1) and rule(Framing(f.sends(k + 1)), head)
    ):
        k += 1
    text = (
        f"first sent by {f.boundaries[k]}" if f.boundaries else "first sent by the app"
    )
    if f.sends(k + 1):
        below = Framing(f.sends(k + 1))
        lengths = b", ".join(below.lengths).decode("latin-1") or "none"
        text += (
            f", where {f.boundaries[k + 1]} below it sent status {below.status}, "
            f"{below.size} body bytes and content-length {lengths}"
        )
    return text
