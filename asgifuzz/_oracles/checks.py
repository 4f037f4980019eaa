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
- I9 (the disconnect reaches who waits for it) holds for an endpoint that was
  cancelled before the client left, or, polling ``is_disconnected()``, before
  its next poll: it had no chance to look.
- A user's middleware (``user.<name>`` layers) is opaque: it is assumed to pass
  the request body down unchanged, and it may answer an exception itself (an
  exception that crosses the boundary below it but not the one above it counts
  as handled, not swallowed). An exception it raises is a finding, unless the
  response has started: raising is then the only way to abort it.
- A user's app (``case.app``) has no model: the app's own exceptions while the
  client is connected are its business (the server answers 500), and it may
  stream for as long as it likes (endless streams). What is always judged: no
  exception raised by the framework (Starlette, FastAPI) unless it is the clean
  end of a disconnected request; a valid message sequence; a complete response
  unless the client left; the response starts within the client's patience
  (30 virtual seconds; I4 ``response``); the app returns once the client has
  gone (I4 ``app``); nothing leaks; both backends agree.
"""

from __future__ import annotations

import re

from asgifuzz._driver.outcome import Outcome, describe
from asgifuzz._driver.server import PATIENCE
from asgifuzz._errors import ModelError
from asgifuzz._oracles.exceptions import is_disconnect_error, is_group, members, same
from asgifuzz._oracles.sequences import message_sequences
from asgifuzz._oracles.violations import Violation
from asgifuzz.models._endpoint import POLL_INTERVAL

#: Invariant ids and their short titles.
_LEAK_WARNINGS = ("ResourceWarning", "RuntimeWarning")


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
        self.model_ids = {id(m) for e in self.rec.raised for m in members(e)}
        # The client is gone before the response was complete.
        gone, complete = self.rec.disconnected, self.rec.response_complete
        self.cut_short = gone is not None and (complete is None or gone < complete)
        self.app_mode = bool(self.case.app)
        # Derived, not written back: judging an outcome twice gives the same.
        self.handled = [*self.rec.handled, *self._handled_by_user_layers()]

    def _user_abort(self) -> bool:
        """A user's layer raised to abort a response the server had started."""
        o = self.o
        if o.escaped is None or not any(
            la.family == "user" for la in self.case.stack.layers
        ):
            return False
        name = type(o.escaped).__name__  # as the taps describe it
        raised = [
            e.tick
            for e in self.rec.events
            if e.kind == "raise" and e.detail.split(":")[0] == name
        ]
        starts = [
            t
            for t, m in self.events(0, "send")
            if m.get("type") == "http.response.start"
        ]
        return (
            bool(raised and starts)
            and starts[0] < min(raised)
            and not _framework_raised(o)
        )

    def _handled_by_user_layers(self) -> list[BaseException]:
        """Exceptions that crossed into a user layer and did not come out of it."""
        rec, layers = self.rec, self.case.stack.layers
        if not rec.crossed or not any(la.family == "user" for la in layers):
            return []
        wrap = self.case.stack.mode == "wrap" or self.app_mode
        seen: dict[int, set[int]] = {}
        for where, ids in rec.crossed:
            seen.setdefault(where, set()).update(ids)
        if self.o.escaped is not None:
            seen.setdefault(0, set()).update(id(m) for m in members(self.o.escaped))
        stopped: set[int] = set()
        for i, layer in enumerate(layers):
            if layer.family == "user":
                inner, outer = (i + 1, i) if wrap else (i + 2, i + 1)
                stopped |= seen.get(inner, set()) - seen.get(outer, set())
        # The model exceptions are alive (rec.raised holds them): ids are safe.
        return [e for e in rec.raised if id(e) in stopped]

    def _canonical(self, exc: BaseException) -> BaseException:
        return next((r for r in self.rec.raised if same(exc, r)), exc)

    def _single_model_leaf(self, group: BaseException) -> BaseException | None:
        """The one model exception a group wraps alone, or None.

        Policy: a group of several real failures (two model exceptions, or one
        and the server's disconnect error) is a fair way to report them.
        """
        leaves = [
            m
            for m in members(group)
            if id(m) in self.model_ids or is_disconnect_error(m)
        ]
        if len(leaves) == 1 and id(leaves[0]) in self.model_ids:
            return leaves[0]
        return None

    def fail(
        self, invariant: str, message: str, tag: str = "", *, frames: bool = False
    ) -> None:
        where = self.o.app_frames() if frames else ()
        self.out.append(Violation(invariant, message, tag, where))

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
            leaves = members(exc)
            wrapped = is_group(exc) and all(
                id(e) in self.model_ids or is_disconnect_error(e)
                for e in leaves[1:]
                if not is_group(e)
            )
            if id(exc) in self.model_ids or wrapped:
                pass  # I6 says how the app's own exception was changed.
            elif is_disconnect_error(exc) and self.rec.disconnected is not None:
                pass  # the clean end of a request whose client has gone
            elif self.app_mode and not _framework_raised(o):
                pass  # policy: the user app's own error; the server answers 500
            elif self._user_abort():
                pass  # policy: raising is how a user's layer aborts a started response
            else:
                self.fail(
                    "I1",
                    f"the app raised {describe(exc)}, which no endpoint or layer "
                    f"raised (top frame: {_top(o)})",
                    tag=type(exc).__name__,
                    frames=True,
                )
        flagged = any(v.invariant == "I1" for v in self.out)
        if (
            r.status == 500
            and not self.rec.raised
            and not self.app_mode
            and not flagged
        ):
            # (Not when the exception behind the 500 is already the finding.)
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
        elif o.timed_out and (
            not o.response.started
            if self.app_mode
            else ep.kind not in ("wait_disconnect", "poll_disconnect")
        ):
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
            abandoned = self.o.escaped is not None or self.handled
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
        handled_ids = {id(m) for h in self.handled for m in members(h)}
        for h in self.handled:
            if (
                is_group(h)
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
                    e for e in rec.raised if id(exc) in {id(m) for m in members(e)}
                )
                self.fail(
                    "I6",
                    f"the app raised {describe(group)} but {describe(exc)} came out: "
                    "the group was collapsed",
                    "collapsed",
                )
            elif id(exc) not in self.raised_ids and is_group(exc):
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
                and not self.handled
                and self.rec.disconnected is None
            ):
                self.fail(
                    "I6",
                    f"{len(rec.raised)} exceptions were raised, none came out and no "
                    "layer handled any: all were swallowed",
                    "swallowed",
                )
            return
        escaped_ids = {id(m) for m in members(exc)} if exc is not None else set()
        for raised in rec.raised:
            if id(raised) in escaped_ids or id(raised) in handled_ids:
                continue
            if any(id(m) in escaped_ids for m in members(raised)):
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
        ended = [
            e
            for e in self.rec.events
            if e.where == endpoint and e.kind in ("raise", "return")
        ]
        if ended and ended[0].tick < self.rec.disconnected:
            return  # cancelled or done before the client left: it was not waiting
        gone_at = next(
            e.time for e in self.rec.events if e.tick == self.rec.disconnected
        )
        if (
            ended
            and self.case.endpoint.kind == "poll_disconnect"
            and ended[0].kind == "raise"
            and ended[0].time - gone_at < POLL_INTERVAL
        ):
            return  # cancelled before its next poll: it had no chance to look
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
        self.out += message_sequences(self.rec)
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


#: Frames of the event loops and helpers, skipped to find who raised.
_PLUMBING = ("/anyio/", "/trio/", "/asyncio/", "/contextlib.py", "/exceptiongroup/")
#: The frameworks whose exceptions are findings in a user's app.
_FRAMEWORKS = ("/starlette/", "/fastapi/")


def _framework_raised(o: Outcome) -> bool:
    """Whether the innermost frame (past the event loops) of the escaped
    exception lies in Starlette or FastAPI."""
    for filename, _, _ in reversed(o.escaped_frames):
        if not any(p in filename for p in _PLUMBING):
            return any(f in filename for f in _FRAMEWORKS)
    return False


def _top(o: Outcome) -> str:
    if not o.escaped_frames:
        return "unknown"
    filename, lineno, name = o.escaped_frames[-1]
    return f"{filename}:{lineno} in {name}"


def judge_outcome(outcome: Outcome) -> list[Violation]:
    """The invariants that one run can judge alone (all but I8 and I10)."""
    return _Judge(outcome).judge()
