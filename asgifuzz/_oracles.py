"""The invariants: each judges an `Outcome` and names its evidence.

Policy choices (where the right behaviour is not written down anywhere):

- A disconnect ends the obligations of a response: once the client is gone, an
  incomplete response, a ``ClientDisconnect`` escaping, or the strict server's
  ``OSError`` escaping are all a clean end (the servers catch them). A
  ``RuntimeError`` never is.
- A `BaseHTTPMiddleware` that consumed ``request.stream()`` hands the next layer
  an empty body: Starlette documents this ("we send an empty body so that
  downstream things don't hang"), so readers below such a layer expect ``b""``.
- Transparency (I8) is judged only for clients that never hang up: a
  disconnect scheduled by the n-th ``receive()`` falls elsewhere once a layer
  calls ``receive()`` itself.
- Streaming (I4) is promised only by stacks without a buffering layer
  (``replace_body``; GZip, except for ``text/event-stream``) and only while the
  client is connected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from asgifuzz._driver import BACKENDS, PATIENCE, ClientDisconnected, run
from asgifuzz._errors import ModelError, violation_class
from asgifuzz._outcome import Outcome, describe, group_members
from asgifuzz.models import Case
from asgifuzz.models._case import PASSTHROUGH_KINDS, Stack

#: Invariant ids and their short titles.
INVARIANTS = {
    "I1": "a valid response or a clean end",
    "I2": "a valid ASGI message sequence",
    "I3": "the body as the client sent it",
    "I4": "no hang; streaming streams",
    "I5": "background tasks run once, after the response",
    "I6": "exceptions come out as themselves",
    "I7": "nothing leaks",
    "I8": "pass-through layers are transparent",
    "I9": "the disconnect reaches who waits for it",
    "I10": "asyncio and trio agree",
}
_LEAK_WARNINGS = ("ResourceWarning", "RuntimeWarning")


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with the evidence in ``message``.

    ``tag`` is a short, stable name for the kind of failure within the
    invariant (an exception type, a warning's object, a reader), so that two
    different bugs breaking the same invariant are reported apart.
    """

    invariant: str
    message: str
    tag: str = ""

    @property
    def key(self) -> str:
        """``invariant:tag``, the failure's identity for deduplication."""
        return f"{self.invariant}:{self.tag}" if self.tag else self.invariant

    @property
    def title(self) -> str:
        return INVARIANTS[self.invariant]


def _members(exc: BaseException) -> list[BaseException]:
    """``exc`` and, for a group, every exception nested in it."""
    out = [exc]
    for e in group_members(exc):
        out += _members(e)
    return out


def _same(a: BaseException, b: BaseException) -> bool:
    """Whether ``a`` is ``b``, or a copy of group ``b`` that the machinery made.

    ``ExceptionGroup.split``/``subgroup``/``derive`` (which task groups use)
    return new group objects with the same type, message and member objects;
    policy: such a copy still is "the app's exception itself".
    """
    if a is b:
        return True
    if not (isinstance(a, BaseExceptionGroup) and isinstance(b, BaseExceptionGroup)):
        return False
    return (
        type(a) is type(b)
        and a.message == b.message
        and len(a.exceptions) == len(b.exceptions)
        and all(_same(x, y) for x, y in zip(a.exceptions, b.exceptions, strict=True))
    )


def _is_group(exc: BaseException) -> bool:
    return bool(group_members(exc))


def _is_disconnect_error(exc: BaseException) -> bool:
    from starlette.requests import ClientDisconnect

    return isinstance(exc, ClientDisconnect | ClientDisconnected)


class _Judge:
    def __init__(self, outcome: Outcome) -> None:
        self.o = outcome
        self.rec = outcome.recorder
        self.case = outcome.case
        self.out: list[Violation] = []
        if outcome.escaped is not None:
            outcome.escaped = self._canonical(outcome.escaped)
        self.rec.handled[:] = [self._canonical(h) for h in self.rec.handled]
        self.raised_ids = {id(e) for e in self.rec.raised}
        self.model_ids = {id(m) for e in self.rec.raised for m in _members(e)}
        # The client is gone before the response was complete.
        gone, complete = self.rec.disconnected, self.rec.response_complete
        self.cut_short = gone is not None and (complete is None or gone < complete)

    def _canonical(self, exc: BaseException) -> BaseException:
        return next((r for r in self.rec.raised if _same(exc, r)), exc)

    def _single_model_leaf(self, group: BaseException) -> BaseException | None:
        """The one model exception a group wraps alone, or None.

        Policy: a group of several real failures (two model exceptions, or one
        and the server's disconnect error) is a fair way to report them.
        """
        leaves = [
            m
            for m in _members(group)
            if id(m) in self.model_ids or _is_disconnect_error(m)
        ]
        if len(leaves) == 1 and id(leaves[0]) in self.model_ids:
            return leaves[0]
        return None

    def fail(self, invariant: str, message: str, tag: str = "") -> None:
        self.out.append(Violation(invariant, message, tag))

    def events(self, where: int, kind: str) -> list[tuple[int, dict[str, object]]]:
        return [
            (e.tick, e.message or {})
            for e in self.rec.events
            if e.where == where and e.kind == kind
        ]

    def expected_body(self, below_layer: int | None) -> bytes:
        """The body a reader below layer ``below_layer`` (None: the endpoint) gets."""
        layers = self.case.stack.layers
        last = len(layers) if below_layer is None else below_layer
        if any(la.kind == "bhm.read_stream" for la in layers[:last]):
            return b""
        return self.case.request.body_bytes

    # I1 ------------------------------------------------------------------
    def valid_response(self) -> None:
        o, r = self.o, self.o.response
        exc = o.escaped
        if exc is not None and id(exc) not in self.raised_ids:
            leaves = _members(exc)
            wrapped = _is_group(exc) and all(
                id(e) in self.model_ids or _is_disconnect_error(e)
                for e in leaves[1:]
                if not _is_group(e)
            )
            if id(exc) in self.model_ids or wrapped:
                pass  # I6 says how the app's own exception was changed.
            elif _is_disconnect_error(exc) and self.rec.disconnected is not None:
                pass  # the clean end of a request whose client has gone
            else:
                self.fail(
                    "I1",
                    f"the app raised {describe(exc)}, which no endpoint or layer "
                    f"raised (top frame: {_top(o)})",
                    tag=type(exc).__name__,
                )
        if r.status == 500 and not self.rec.raised:
            cause = "after the client disconnected" if self.rec.disconnected else ""
            self.fail(
                "I1",
                f"the server got a 500 {cause} though no endpoint or layer raised "
                "anything".replace("  ", " "),
                tag="500",
            )
        if o.returned and not r.complete and not self.cut_short and exc is None:
            self.fail(
                "I1",
                "the app returned without completing the response "
                f"(started={r.started}, {r.body_messages} body messages) while the "
                "client was still connected",
                tag="incomplete",
            )

    # I2 ------------------------------------------------------------------
    def message_sequences(self) -> None:
        for where, label in enumerate(self.rec.boundaries):
            started = ended = False
            for n, (_, m) in enumerate(self.events(where, "send")):
                kind = m.get("type")
                at = f"at the boundary into {label}, message #{n + 1} {kind!r}"
                if ended:
                    self.fail(
                        "I2",
                        f"{at} was sent after the final body message",
                        "after-final",
                    )
                    break
                if kind == "http.response.start":
                    status = m.get("status")
                    headers = m.get("headers", [])
                    if started:
                        self.fail(
                            "I2", f"{at}: http.response.start sent twice", "start-twice"
                        )
                        break
                    if type(status) is not int or not 100 <= status <= 599:
                        self.fail(
                            "I2",
                            f"{at}: status {status!r} is not an int in [100, 599]",
                            "status",
                        )
                    if not all(
                        len(h) == 2 and all(isinstance(x, bytes) for x in h)
                        for h in headers  # type: ignore[attr-defined]
                    ):
                        self.fail(
                            "I2",
                            f"{at}: headers are not (bytes, bytes) pairs",
                            "headers",
                        )
                    started = True
                elif kind == "http.response.body":
                    if not started:
                        self.fail(
                            "I2", f"{at}: body before http.response.start", "body-first"
                        )
                        break
                    if not isinstance(m.get("body", b""), bytes) or not isinstance(
                        m.get("more_body", False), bool
                    ):
                        self.fail(
                            "I2",
                            f"{at}: body must be bytes, more_body a bool",
                            "body-type",
                        )
                    ended = not m.get("more_body", False)
                else:
                    self.fail("I2", f"{at}: not a valid HTTP response message", "type")
                    break
            body_done = False
            for n, (_, m) in enumerate(self.events(where, "receive")):
                if m.get("type") == "http.request" and body_done:
                    self.fail(
                        "I2",
                        f"at the boundary into {label}, received message #{n + 1} is "
                        "http.request after the request body was complete",
                        "request-after-body",
                    )
                    break
                body_done = body_done or (
                    m.get("type") == "http.request" and not m.get("more_body", False)
                )

    # I3 ------------------------------------------------------------------
    def request_body(self) -> None:
        sent = self.case.request.body_bytes
        for read in self.rec.reads:
            index = None if read.who == "endpoint" else int(read.who.split()[1])
            want = self.expected_body(index)
            if read.complete and read.data != want:
                self.fail(
                    "I3",
                    f"{read.who} read {read.data[:60]!r} ({len(read.data)} bytes) but "
                    f"the client sent {sent[:60]!r} ({len(sent)} bytes)"
                    + ("" if want == sent else f"; expected {want!r} (policy)"),
                )
            elif not read.complete and not want.startswith(read.data):
                self.fail(
                    "I3",
                    f"{read.who} read {read.data[:60]!r} before {read.error}, which is "
                    f"not a prefix of what the client sent ({sent[:60]!r})",
                )

    # I4 ------------------------------------------------------------------
    def no_hang(self) -> None:
        o, ep = self.o, self.case.endpoint
        if o.hung:
            self.fail(
                "I4",
                f"the app had not returned after {PATIENCE * 2:g} virtual seconds "
                f"(last event: {self._last_event()})",
                tag="app",
            )
        elif o.timed_out and ep.kind not in ("wait_disconnect", "poll_disconnect"):
            self.fail(
                "I4",
                f"the client waited {PATIENCE:g} virtual seconds and the response was "
                f"not complete (status={o.response.status}, last event before the "
                f"disconnect: {self._last_event(before=self.rec.disconnected)})",
                tag="response",
            )
        self._streaming()

    def _streaming(self) -> None:
        case, ep = self.case, self.case.endpoint
        if ep.kind not in ("stream", "raise_streaming") or not ep.interval:
            return
        buffering = any(
            la.behaviour == "replace_body"
            or (la.kind == "starlette.gzip" and ep.media_type != "text/event-stream")
            for la in case.stack.layers
        )
        if buffering:
            return
        made = self.rec.chunks_made
        sends = [
            (t, len(m.get("body", b"")))  # type: ignore[arg-type]
            for t, m in self.events(0, "send")
            if m.get("type") == "http.response.body"
        ]
        chunk_len = len(b"data: 0\n\n")
        for j in range(len(made) - 1):
            deadline = made[j + 1]
            if self.rec.disconnected is not None and self.rec.disconnected < deadline:
                return
            got = sum(n for t, n in sends if t < deadline)
            if got < chunk_len * (j + 1):
                self.fail(
                    "I4",
                    f"chunk {j} of the stream had not reached the server ({got} bytes "
                    f"there) when the endpoint made chunk {j + 1}, "
                    f"{ep.interval}s later, though no layer buffers",
                    tag="streaming",
                )
                return

    # I5 ------------------------------------------------------------------
    def background(self) -> None:
        rec = self.rec
        for bg in rec.background:
            if bg.runs > 1:
                self.fail(
                    "I5",
                    f"the background task of {bg.owner} ran {bg.runs} times",
                    "twice",
                )
            owner_done = self._owner_final_body(bg.owner)
            if (
                bg.started is not None
                and owner_done is not None
                and bg.started < owner_done
            ):
                self.fail(
                    "I5",
                    f"the background task of {bg.owner} started (event {bg.started}) "
                    f"before its response was sent (event {owner_done})",
                    "early",
                )
            abandoned = self.o.escaped is not None or rec.handled
            if (
                abandoned
                or self.cut_short
                or not self.o.response.complete
                or owner_done is None
            ):
                # Nobody promised to run it: the client left, or a layer above
                # replaced the owner's response (raised, or handled an exception).
                continue
            if bg.runs == 0:
                self.fail(
                    "I5",
                    f"the background task of {bg.owner} never ran, though the response "
                    "was complete and the client connected",
                    "never",
                )
            elif (
                bg.finished is None
                and bg.raised is None
                and not self._bg_raised(bg.owner)
            ):
                self.fail(
                    "I5",
                    f"the background task of {bg.owner} started but never finished "
                    "(cancelled?)",
                    "unfinished",
                )
            elif (
                self.case.endpoint.background == "wait"
                and bg.owner == "endpoint"
                and not bg.response_complete_at_end
            ):
                self.fail(
                    "I5",
                    "the server got the end of the response only after the endpoint's "
                    "1-second background task had finished: the response waited for it",
                    "blocking",
                )

    def _bg_raised(self, owner: str) -> bool:
        return any(
            isinstance(e, ModelError) and "background" in e.origin and owner in e.origin
            for e in self.rec.raised
        )

    def _owner_final_body(self, owner: str) -> int | None:
        if owner == "endpoint":
            where = len(self.rec.boundaries) - 1
        else:
            index = int(owner.split()[1])
            where = index + 1 if self.case.stack.mode == "starlette" else index
        for t, m in self.events(where, "send"):
            if m.get("type") == "http.response.body" and not m.get("more_body", False):
                return t
        return None

    # I6 ------------------------------------------------------------------
    def exceptions(self) -> None:
        o, rec = self.o, self.rec
        exc = o.escaped
        handled_ids = {id(m) for h in rec.handled for m in _members(h)}
        for h in rec.handled:
            if (
                _is_group(h)
                and id(h) not in self.model_ids
                and self._single_model_leaf(h) is not None
            ):
                self.fail(
                    "I6",
                    f"a layer caught {describe(h)}: the app's exception reached it "
                    "wrapped in a group it did not raise",
                    "wrapped-before-handler",
                )
        if exc is not None:
            if id(exc) in handled_ids:
                self.fail(
                    "I6",
                    f"{describe(exc)} escaped the app after a layer had handled it",
                    "reraised",
                )
            elif id(exc) in self.model_ids and id(exc) not in self.raised_ids:
                group = next(
                    e for e in rec.raised if id(exc) in {id(m) for m in _members(e)}
                )
                self.fail(
                    "I6",
                    f"the app raised {describe(group)} but {describe(exc)} came out: "
                    "the group was collapsed",
                    "collapsed",
                )
            elif id(exc) not in self.raised_ids and _is_group(exc):
                inner = self._single_model_leaf(exc)
                if inner is not None:
                    self.fail(
                        "I6",
                        f"the app raised {describe(inner)} but {describe(exc)} came "
                        "out: it was wrapped in a group",
                        "wrapped",
                    )
        if self.rec.disconnected is not None or len(rec.raised) != 1:
            # Policy: after a disconnect cancellation may pre-empt an exception;
            # when several were raised concurrently, one may win (checked below).
            if (
                rec.raised
                and exc is None
                and not rec.handled
                and self.rec.disconnected is None
            ):
                self.fail(
                    "I6",
                    f"{len(rec.raised)} exceptions were raised, none came out and no "
                    "layer handled any: all were swallowed",
                    "swallowed",
                )
            return
        escaped_ids = {id(m) for m in _members(exc)} if exc is not None else set()
        for raised in rec.raised:
            if id(raised) in escaped_ids or id(raised) in handled_ids:
                continue
            if any(id(m) in escaped_ids for m in _members(raised)):
                continue
            self.fail(
                "I6",
                f"{describe(raised)} was raised, but neither came out of the app nor "
                f"was handled by a layer: it was swallowed"
                + (f" ({describe(exc)} came out instead)" if exc is not None else ""),
                "swallowed",
            )

    # I7 ------------------------------------------------------------------
    def leaks(self) -> None:
        for w in self.o.warnings:
            if w.startswith(_LEAK_WARNINGS):
                self.fail("I7", f"the run left {w}", tag=_leak_tag(w))
        for t in self.o.unraisable:
            self.fail(
                "I7",
                f"an exception was raised where nobody could catch it: {t}",
                tag="unraisable",
            )
        for t in self.o.pending_tasks:
            self.fail(
                "I7", f"a task was still pending when the app returned: {t}", tag="task"
            )

    # I9 ------------------------------------------------------------------
    def disconnect_delivered(self) -> None:
        if (
            self.case.endpoint.kind not in ("wait_disconnect", "poll_disconnect")
            or self.rec.disconnected is None
        ):
            return
        endpoint = len(self.rec.boundaries) - 1
        reached = any(e.where == endpoint for e in self.rec.events)
        seen = any(who == "endpoint" for who, _ in self.rec.disconnects_seen)
        if reached and not seen and not self.o.hung:
            self.fail(
                "I9",
                "the client disconnected but the endpoint, waiting for http.disconnect, "
                "never got it",
                "endpoint",
            )
        elif reached and not seen:
            self.fail(
                "I9",
                "the client disconnected but the endpoint, waiting for http.disconnect, "
                "was still waiting when the run's time ran out",
                "endpoint",
            )

    def _last_event(self, before: int | None = None) -> str:
        events = [e for e in self.rec.events if before is None or e.tick < before]
        if not events:
            return "none"
        e = events[-1]
        where = "" if e.where < 0 else f" at {self.rec.boundaries[e.where]}"
        what = e.detail or (e.message or {}).get("type", "")
        return f"#{e.tick} {e.kind}{where} {what}".strip()

    def judge(self) -> list[Violation]:
        self.valid_response()
        self.message_sequences()
        self.request_body()
        if (
            self.case.endpoint.kind in ("wait_disconnect", "poll_disconnect")
            and self.o.hung
        ):
            self.disconnect_delivered()
        else:
            self.no_hang()
            self.disconnect_delivered()
        self.background()
        self.exceptions()
        self.leaks()
        return self.out


def _leak_tag(warning: str) -> str:
    if "Async generator" in warning:
        return "asyncgen"
    if "never awaited" in warning:
        return "coroutine"
    match = re.search(r"<(\w+)", warning)
    return match.group(1) if match else warning.split(":")[0]


def _top(o: Outcome) -> str:
    if not o.escaped_frames:
        return "unknown"
    filename, lineno, name = o.escaped_frames[-1]
    return f"{filename}:{lineno} in {name}"


def judge_outcome(outcome: Outcome) -> list[Violation]:
    """The invariants that one run can judge alone (all but I8 and I10)."""
    return _Judge(outcome).judge()


def _server_view(o: Outcome) -> tuple[object, ...]:
    r = o.response
    escaped = None if o.escaped is None else type(o.escaped).__name__
    return (r.status, sorted(r.headers), r.body, r.complete, escaped)


@dataclass
class Verdict:
    """The outcomes of a case on each backend and the invariants they broke."""

    case: Case
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    violations: dict[str, list[Violation]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(self.violations.values())

    def first(self) -> tuple[str, Violation] | None:
        """The most specific violation (lowest invariant number, I10 last)."""
        found = [(b, v) for b, vs in self.violations.items() for v in vs]
        found.sort(key=lambda bv: int(bv[1].invariant[1:]))
        return found[0] if found else None


def _transparency(case: Case, outcome: Outcome, backend: str) -> list[Violation]:
    layers = case.stack.layers
    if case.client.disconnect != "never" or not any(
        la.kind in PASSTHROUGH_KINDS for la in layers
    ):
        return []
    bare = replace(
        case,
        stack=Stack(
            layers=tuple(la for la in layers if la.kind not in PASSTHROUGH_KINDS),
            mode=case.stack.mode,
        ),
    )
    other = run(bare, backend)
    with_, without = _server_view(outcome), _server_view(other)
    if with_ == without:
        return []
    names = ("status", "headers", "body", "complete", "escaped")
    diffs = [
        f"{n}: {a!r} vs {b!r}"
        for n, a, b in zip(names, with_, without, strict=True)
        if a != b
    ]
    differing = {n for n, a, b in zip(names, with_, without, strict=True) if a != b}
    # Tag by the most telling difference: one bug, one key.
    tag = next(
        n
        for n in ("complete", "status", "escaped", "body", "headers")
        if n in differing
    )
    return [
        Violation(
            "I8",
            "the server sees a different response with the pass-through layers than "
            f"without them ({'; '.join(diffs)})",
            tag,
        )
    ]


def judge(case: Case, backends: tuple[str, ...] = BACKENDS) -> Verdict:
    """Run ``case`` on each backend and judge every invariant."""
    verdict = Verdict(case)
    for backend in backends:
        outcome = run(case, backend)
        violations = judge_outcome(outcome)
        violations += _transparency(case, outcome, backend)
        verdict.outcomes[backend] = outcome
        verdict.violations[backend] = violations
    if len(backends) > 1:
        keys = {b: sorted({v.key for v in vs}) for b, vs in verdict.violations.items()}
        if len({tuple(k) for k in keys.values()}) > 1:
            text = "; ".join(f"{b}: {k or 'no violation'}" for b, k in keys.items())
            verdict.violations["both"] = [
                Violation("I10", f"the backends disagree ({text})")
            ]
    return verdict


def check(case: Case, backends: tuple[str, ...] = BACKENDS) -> Verdict:
    """Judge ``case`` and raise `InvariantViolation` (a subclass per invariant) if it fails."""
    __tracebackhide__ = True
    verdict = judge(case, backends)
    first = verdict.first()
    if first is not None:
        backend, violation = first
        all_violations = [v for vs in verdict.violations.values() for v in vs]
        raise violation_class(violation.key)(all_violations, case, backend)
    return verdict
