"""The facts of one run: what every check needs, computed once from its `Outcome`.

`facts` reads the outcome and never writes to it: the canonical form of each
exception (the model's own object for a copy of its group) lives here, not in
the outcome, so that judging an outcome twice gives the same verdict. The
transcript is read in one pass; the checks look up what they need by boundary.

`Facts` is an immutable named tuple rather than a frozen dataclass: it is made
for every run judged, and a tuple is made several times faster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from asgifuzz._driver.outcome import Outcome, ServerResponse
from asgifuzz._oracles.decoding import content_codings, decoder
from asgifuzz._oracles.exceptions import members, same
from asgifuzz._targets.declarations import Declaration
from asgifuzz._targets.specs import declarations
from asgifuzz.models import Case
from asgifuzz.models._build import layer_name
from asgifuzz.models._record import Background, Event, Read

#: Frames of the event loops and helpers, skipped to find who raised.
PLUMBING = ("/anyio/", "/trio/", "/asyncio/", "/contextlib.py", "/exceptiongroup/")
#: The frameworks whose exceptions are findings in a user's app.
FRAMEWORKS = ("/starlette/", "/fastapi/")
#: Endpoint kinds that wait for the client to leave.
WAITING_KINDS = ("wait_disconnect", "poll_disconnect")


class Facts(NamedTuple):
    """What one run did, as the checks need it (read-only views of the outcome)."""

    #: The run itself; read it only through the facts below.
    outcome: Outcome
    #: The exception that escaped the app, canonical: the model's own object
    #: when what escaped is a copy of the group the model raised.
    escaped: BaseException | None
    #: What a layer handled (canonical), and what a user's layer stopped.
    handled: tuple[BaseException, ...]
    #: The ids of the exceptions the models raised, and of every exception
    #: nested in them.
    raised_ids: frozenset[int]
    model_ids: frozenset[int]
    #: The stack has a user's middleware (``user.<name>`` layers).
    user_layers: bool
    #: The client was gone before the response was complete.
    cut_short: bool
    #: The virtual time of the disconnect (None: none, or not in the transcript).
    gone_at: float | None
    #: The ``send`` events and the messages received at each boundary.
    sent: Sequence[Sequence[Event]]
    received: Sequence[Sequence[dict[str, Any]]]
    #: The tick of the first ``raise`` event of each exception type.
    first_raise: Mapping[str, int]
    #: Whether any event crossed the endpoint's boundary, and the first
    #: ``raise`` or ``return`` there.
    endpoint_reached: bool
    endpoint_end: Event | None

    @property
    def case(self) -> Case:
        return self.outcome.case

    @property
    def response(self) -> ServerResponse:
        return self.outcome.response

    @property
    def app_mode(self) -> bool:
        """The case runs a user's app (``case.app``) instead of the endpoint."""
        return bool(self.outcome.case.app)

    @property
    def raised(self) -> Sequence[BaseException]:
        """The exceptions the models raised on purpose (alone or as groups)."""
        return self.outcome.recorder.raised

    @property
    def disconnected(self) -> int | None:
        """The tick of the client's disconnect."""
        return self.outcome.recorder.disconnected

    @property
    def boundaries(self) -> Sequence[str]:
        """The boundaries' names, outermost first (for messages)."""
        return self.outcome.recorder.boundaries

    @property
    def endpoint(self) -> int:
        """The index of the endpoint's (or the user's app's) boundary."""
        return len(self.outcome.recorder.boundaries) - 1

    @property
    def reads(self) -> Sequence[Read]:
        return self.outcome.recorder.reads

    @property
    def background(self) -> Sequence[Background]:
        return self.outcome.recorder.background

    @property
    def chunks_made(self) -> Sequence[int]:
        """The ticks at which a streaming endpoint made each chunk."""
        return self.outcome.recorder.chunks_made

    @property
    def endpoint_saw_disconnect(self) -> bool:
        return any(
            who == "endpoint" for who, _ in self.outcome.recorder.disconnects_seen
        )

    def sends(self, where: int) -> Sequence[Event]:
        """The ``send`` events at boundary ``where``, in order."""
        return self.sent[where] if 0 <= where < len(self.sent) else ()

    def receives(self, where: int) -> Sequence[dict[str, Any]]:
        """The messages received at boundary ``where``, in order."""
        return self.received[where] if 0 <= where < len(self.received) else ()

    @property
    def codings(self) -> tuple[str, ...]:
        """The content codings of the response the server got, in the order
        applied (``identity`` dropped)."""
        return content_codings(self.outcome.response.headers)

    def delivered(self) -> list[tuple[int, int, int]] | None:
        """After each body message that reached the server: its tick, the bytes
        there so far, and how many of the body's bytes a client could decode
        from them (a content-encoded body is decompressed as it arrives; read
        on demand); None if a coding cannot be decoded here."""
        codings = self.codings
        d = decoder(codings) if codings else None
        if codings and d is None:
            return None
        out: list[tuple[int, int, int]] = []
        raw = decoded = 0
        for e in self.sends(0):
            m = e.message or {}
            if m.get("type") == "http.response.body":
                body = m.get("body", b"")
                raw += len(body)
                decoded += len(body) if d is None else len(d.feed(body))
                out.append((e.tick, raw, decoded))
        return out

    def declared(self) -> tuple[Declaration, ...]:
        """What each layer declares it does (`asgifuzz._targets.declarations`;
        empty for a stack without user layers: all pass-through or modelled)."""
        return declarations(self.outcome.case) if self.user_layers else ()

    def framework_raised(self) -> bool:
        """Whether the escaped exception's innermost frame (past the event
        loops) lies in Starlette or FastAPI (read on demand: it walks frames)."""
        for filename, _, _ in reversed(self.outcome.escaped_frames):
            if not any(p in filename for p in PLUMBING):
                return any(f in filename for f in FRAMEWORKS)
        return False

    def app_frames(self) -> tuple[str, ...]:
        """The escaped exception's innermost frames in the app under test."""
        return self.outcome.app_frames()

    def last_event(self, before: int | None = None) -> str:
        """The last event (before tick ``before``), for messages."""
        events = [
            e for e in self.outcome.recorder.events if before is None or e.tick < before
        ]
        if not events:
            return "none"
        e = events[-1]
        where = "" if e.where < 0 else f" at {self.boundaries[e.where]}"
        what = e.detail or (e.message or {}).get("type", "")
        return f"#{e.tick} {e.kind}{where} {what}".strip()


def facts(outcome: Outcome) -> Facts:
    """The facts of ``outcome``, which is left as it was."""
    rec, case = outcome.recorder, outcome.case
    raised = rec.raised

    def canonical(exc: BaseException) -> BaseException:
        return next((r for r in raised if same(exc, r)), exc)

    escaped = None if outcome.escaped is None else canonical(outcome.escaped)
    user_layers = any(la.family == "user" for la in case.stack.layers)
    handled = tuple(canonical(h) for h in rec.handled) if rec.handled else ()
    if user_layers and rec.crossed:
        handled += _stopped_by_user_layers(outcome, escaped)

    events, disconnected = rec.events, rec.disconnected
    endpoint = len(rec.boundaries) - 1
    # One pass over the transcript (the hot loop of judging: keep it lean).
    sent: list[list[Event]] = [[] for _ in rec.boundaries]
    received: list[list[dict[str, Any]]] = [[] for _ in rec.boundaries]
    first_raise: dict[str, int] = {}
    end: Event | None = None
    for e in events:
        kind = e.kind
        if kind == "send":
            sent[e.where].append(e)
        elif kind == "receive":
            received[e.where].append(e.message or {})
        elif kind == "raise" or kind == "return":
            if kind == "raise" and e.exc_type not in first_raise:
                first_raise[e.exc_type] = e.tick
            if end is None and e.where == endpoint:
                end = e
    reached = end is not None or bool(
        endpoint >= 0 and (sent[endpoint] or received[endpoint])
    )
    gone_at = None
    if disconnected is not None:
        # Ticks count events, so the disconnect's event is at its tick - 1.
        at = disconnected - 1
        if 0 <= at < len(events) and events[at].tick == disconnected:
            gone_at = events[at].time
        else:
            gone_at = next((e.time for e in events if e.tick == disconnected), None)
    complete = rec.response_complete
    return Facts(
        outcome,
        escaped,
        handled,
        frozenset(id(e) for e in raised) if raised else frozenset(),
        frozenset(id(m) for e in raised for m in members(e)) if raised else frozenset(),
        user_layers,
        disconnected is not None and (complete is None or disconnected < complete),
        gone_at,
        sent,
        received,
        first_raise,
        reached,
        end,
    )


def _stopped_by_user_layers(
    outcome: Outcome, escaped: BaseException | None
) -> tuple[BaseException, ...]:
    """Exceptions that crossed into a user layer and did not come out of it."""
    rec, case = outcome.recorder, outcome.case
    wrap = case.stack.mode == "wrap" or bool(case.app)
    seen: dict[int, set[int]] = {}
    for where, ids in rec.crossed:
        seen.setdefault(where, set()).update(ids)
    if escaped is not None:
        seen.setdefault(0, set()).update(id(m) for m in members(escaped))

    def crossed(exc: BaseException, where: int) -> bool:
        ids = seen.get(where, set())
        if id(exc) in ids:
            return True
        # Policy: a copy of a group (derive/split, as task groups make) with the
        # same members is the same exception: it crossed if all its members did.
        leaves = members(exc)[1:]
        return bool(leaves) and all(id(m) in ids for m in leaves)

    stopped: list[BaseException] = []
    for i, layer in enumerate(case.stack.layers):
        if layer.family == "user":
            inner, outer = (i + 1, i) if wrap else (i + 2, i + 1)
            # The model exceptions are alive (rec.raised holds them): ids are safe.
            stopped += [
                e
                for e in rec.raised
                if crossed(e, inner) and not crossed(e, outer) and e not in stopped
            ]
    return tuple(e for e in rec.raised if e in stopped)


def inside(outcome: Outcome, index: int) -> int:
    """The boundary just inside layer ``index``: what crosses it is what the
    layer passes down and what it gets back."""
    name = layer_name(index, outcome.case.stack.layers[index])
    return outcome.recorder.boundaries.index(name) + 1


def request_bodies(
    outcome: Outcome, where: int, before: int | None = None
) -> tuple[bytes, int | None, int | None]:
    """What crossed boundary ``where`` of the request body (before tick
    ``before``): the bytes up to the final message, the tick of the first
    ``http.request`` and of the final one (None: none yet)."""
    out: list[bytes] = []
    first = end = None
    for e in outcome.recorder.events:
        if before is not None and e.tick >= before:
            break
        m = e.message or {}
        if e.kind == "receive" and e.where == where and m.get("type") == "http.request":
            first = e.tick if first is None else first
            out.append(m.get("body", b""))
            if not m.get("more_body", False):
                end = e.tick
                break
    return b"".join(out), first, end
