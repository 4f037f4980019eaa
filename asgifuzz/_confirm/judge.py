"""What a real client's view says about a failure key: confirmed or not.

An invariant is judged here on what the client saw (`Seen`) and, for an
exception that escaped the app (I1:<type>), on the traceback the server logged:
a hang (I4:response), a body other than the one sent (I3, for endpoints that
echo it), a 500 or a cut response (I1:500, I1:incomplete), a framing error
(I11), or a difference between the case's app and the same app without its
pass-through layers (I8). The others
judge the app's inside (message order, background tasks, leaks, exception
types) and leave no trace a client can see: `wire_reason` says so, as it says
when the case needs a server behaviour no real server has on demand.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from asgifuzz._confirm.client import Seen

# The verdicts, as a corpus entry records them (re-exported for the callers).
from asgifuzz._corpus.confirmed import CONFIRMED as CONFIRMED
from asgifuzz._corpus.confirmed import NOT_CONFIRMABLE as NOT_CONFIRMABLE
from asgifuzz._corpus.confirmed import NOT_CONFIRMED as NOT_CONFIRMED
from asgifuzz._driver.extensions import ADVERTISED, MESSAGE_TYPES
from asgifuzz.models import Case

#: Endpoint kinds whose response body is the request body they read.
ECHOES = ("echo", "stream_body")  # (they answer with its SHA-256)
#: The I8 fields a client sees, in the order `transparency.FIELDS` ranks them.
I8_FIELDS = ("complete", "status", "body", "headers")
#: Headers that differ between any two responses, or only frame the body.
_VARYING = ("date", "server", "content-length", "transfer-encoding", "connection")


@dataclass(frozen=True)
class Judged:
    """One try's verdict and why."""

    status: str
    detail: str


def wire_reason(case: Case, key: str) -> str:
    """Why ``key`` cannot be confirmed by a real client ("": it can)."""
    family, _, sub = key.partition(":")
    server, client = case.server, case.client
    if case.app or any(la.family == "user" for la in case.stack.layers):
        return "the case runs your own code, which the server process does not import"
    if server.send_checkpoints or server.receive_checkpoints:
        return (
            "the case needs a server whose send() or receive() takes a given number "
            "of scheduler checkpoints (a real server's timing cannot be set)"
        )
    if client.disconnect == "checkpoints":
        return "the client hangs up after a count of scheduler checkpoints, which is no point on the wire"
    unadvertised = _unadvertised(case.endpoint.kind)
    if unadvertised:
        return (
            f"the endpoint sends {unadvertised}, which no real server advertises "
            "(only the strict profile does), so no server can run the case"
        )
    if server.name == "strict":
        return "the case needs send() to raise OSError after a disconnect (ASGI 2.4), which no real server does"
    if family == "I4" and (sub != "response" or client.disconnect != "never"):
        return f"{key} is about the app after the response, which a client does not see"
    if family == "I3" and case.endpoint.kind not in ECHOES:
        return "the endpoint does not echo the body it read, so a client cannot see it"
    if key in ("I1:500", "I1:incomplete") and client.disconnect != "never":
        return f"the client left before the response, so it sees no evidence of {key}"
    if family == "I8" and sub.rstrip("+-") not in I8_FIELDS:
        return f"{key} is about an exception that reached the server, which a client does not see"
    if family not in ("I1", "I3", "I4", "I8", "I11"):
        return (
            f"invariant {family} judges the app's inside, which a client does not see"
        )
    return ""


def _unadvertised(kind: str) -> str:
    """The extension an endpoint of ``kind`` sends if no real server's
    profile advertises it (``http.response.zerocopysend``), else ""."""
    extension = MESSAGE_TYPES.get(f"http.response.{kind}", "")
    real = {
        e
        for (name, _), ext in ADVERTISED.items()
        if name != "strict"
        for e in ext or ()
    }
    return extension if extension and extension not in real else ""


def _headers(seen: Seen) -> set[str]:
    return {k.lower() for k, _ in seen.headers} - set(_VARYING)


def _more_or_less(with_: object, without: object) -> str:
    if isinstance(with_, bool):
        return "+" if with_ else "-"
    if isinstance(with_, bytes) and isinstance(without, bytes):
        if with_.startswith(without):
            return "+"
        return "-" if without.startswith(with_) else ""
    if isinstance(with_, set) and isinstance(without, set):
        return "+" if with_ > without else "-" if with_ < without else ""
    return ""


def i8_difference(with_: Seen, without: Seen) -> str:
    """The first field (with its direction) in which the two views differ ("": none)."""
    views = [
        ("complete", with_.complete, without.complete),
        ("status", with_.status, without.status),
        ("body", with_.body, without.body),
        ("headers", _headers(with_), _headers(without)),
    ]
    for name, a, b in views:
        if a != b:
            return name + ("" if name == "status" else _more_or_less(a, b))
    return ""


def logged_type(key: str) -> str:
    """The exception type an ``I1:<type>`` key is confirmed by in the server's
    log ("": the key is confirmed otherwise)."""
    family, _, sub = key.partition(":")
    return sub if family == "I1" and sub not in ("", "500", "incomplete") else ""


def escaped(log: str, exc_type: str) -> str:
    """The line of the server's log where an exception of type ``exc_type``
    ended a traceback (alone, or in a group: ``| Type: ...``); "" if none."""
    pattern = rf"^(?:[ |+]*\| )?((?:\w+\.)*{re.escape(exc_type)}(?::.*)?)$"
    found = re.search(pattern, log, re.MULTILINE)
    return found.group(1).strip() if found else ""


def judge(
    key: str, case: Case, seen: Seen, without: Seen | None = None, log: str = ""
) -> Judged:
    """Whether what the client saw shows ``key`` (``without``: the run of the
    app without its pass-through layers, for I8; ``log``: what the server
    logged, for an exception that escaped the app, I1:<type>)."""
    family, _, sub = key.partition(":")
    shown = seen.describe()
    if logged_type(key):
        line = escaped(log, sub)
        ok = bool(line)
        why = (
            f"the server logged {line!r} ({shown})"
            if ok
            else f"the server logged no {sub} ({shown})"
        )
    elif family == "I4":
        ok = seen.hung and not seen.complete
        why = "the response did not complete within the bound" if ok else shown
    elif family == "I3":
        sent = case.request.body_bytes
        # The endpoint answers with the SHA-256 of the body it read (models._endpoint).
        ok = seen.complete and seen.body != hashlib.sha256(sent).hexdigest().encode()
        why = (
            f"the endpoint read other bytes than the {len(sent)} the client sent "
            f"{sent[:40]!r} (it answered {seen.body[:16]!r}..., their SHA-256)"
            if ok
            else shown
        )
    elif family == "I1":
        if sub == "500":
            ok = seen.status == 500
        else:  # incomplete: the response started and was cut, the client connected
            ok = seen.status is not None and not seen.complete
        why = shown
    elif family == "I11":
        ok = _framing_broken(seen, sub)
        length = seen.header("content-length")
        why = shown + (f", content-length: {length}" if length is not None else "")
    else:  # I8
        # confirm_on runs the app without its pass-through layers for I8.
        assert without is not None
        found = i8_difference(seen, without)
        ok = found == sub
        why = f"with the layers: {shown}; without them: {without.describe()}" + (
            f" (first difference: {found or 'none'})" if not ok else ""
        )
    return Judged(CONFIRMED if ok else NOT_CONFIRMED, why)


def _framing_broken(seen: Seen, sub: str) -> bool:
    status = seen.status
    if status is None:
        return False
    if sub == "no-body":
        length = (seen.header("content-length") or "0").strip()
        return (status < 200 or status in (204, 304)) and (
            bool(seen.body) or length != "0"
        )
    return seen.header("content-length") is not None and not seen.complete
