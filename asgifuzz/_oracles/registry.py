"""The invariants: one registry of id, title, tags and check, in rank order.

Each per-run check is a function of the run's `Facts` (computed once, before
any check runs) that returns its violations; none writes into the outcome or
reads another check's output. The two case-level invariants need other runs:
I8 runs the case again without its pass-through layers, and I10 reads every
other invariant's verdict on each backend (``needs``); `verdict.judge` runs
them. A violation's rank (`rank`) orders reports: lowest first, I10 last.

Policy choices (where the right behaviour is not written down anywhere):

- A disconnect ends the obligations of a response: once the client is gone, an
  incomplete response, a ``ClientDisconnect`` escaping, or the strict server's
  ``OSError`` escaping are all a clean end (the servers catch them). A
  ``RuntimeError`` never is.
- A `BaseHTTPMiddleware` that consumed ``request.stream()`` hands the next layer
  an empty body: Starlette documents this ("we send an empty body so that
  downstream things don't hang"), so readers below such a layer expect ``b""``.
- Transparency (I8) compares what a client sees: decoded bodies, headers but
  the framing ones (``content-length``, ``transfer-encoding``, the coding of a
  body that decodes, a ``vary: accept-encoding`` that comes and goes with
  GZip's compression choice). It is judged only for clients that never hang
  up (a disconnect scheduled by the n-th ``receive()`` falls elsewhere once a
  layer calls ``receive()`` itself), when the run with the layers returned and
  its client did not give up on it alone, and against a run without them that
  is itself clean (all but I5 and I7): see `asgifuzz._oracles.transparency`.
- Streaming (I4) is promised only by stacks without a buffering layer
  (``replace_body``; GZip, except for ``text/event-stream``) and only while the
  client is connected; a chunk is delivered once a client could decode it.
- I9 (the disconnect reaches who waits for it) holds for an endpoint that was
  cancelled before the client left, or, polling ``is_disconnected()``, before
  its next poll: it had no chance to look.
- A user's middleware (``user.<name>`` layers) is opaque: it is assumed to pass
  the request body down unchanged, and it may answer an exception itself (an
  exception that crosses the boundary below it but not the one above it counts
  as handled, not swallowed). An exception it raises is a finding, unless the
  response has started: raising is then the only way to abort it.
- A user's layer may declare what it does instead
  (`asgifuzz._targets.declarations`): readers below a request-body transformer
  get what it passed down (I3), and it reads the client's whole body before it
  ends its own; a declared buffer is not charged I4 ``streaming`` for its media
  types; a declared encoder's coding and ``vary`` are no I8 difference (the
  body is compared decoded); a declared buffer or encoder passes the body on
  whole, decoded (I8, per run: `asgifuzz._oracles.promises`).
- A user's app (``case.app``) has no model: the app's own exceptions while the
  client is connected are its business (the server answers 500), and it may
  stream for as long as it likes (endless streams). What is always judged: no
  exception raised by the framework (Starlette, FastAPI) unless it is the clean
  end of a disconnected request; a valid message sequence; a complete response
  unless the client left; the response starts within the client's patience
  (30 virtual seconds; I4 ``response``); the app returns once the client has
  gone (I4 ``app``); nothing leaks; the response's framing follows HTTP
  (I11); both backends agree.
- Framing (I11) judges what the app owes the server, not what the server does
  itself: body bytes on a response to ``HEAD`` are dropped by real servers
  (Starlette sends them), so only a no-content status (1xx, 204, 304) forbids
  them; a ``content-length`` is judged on complete responses that may have
  content, other than to ``HEAD`` (see `asgifuzz._oracles.framing`).
- I11 ranks after I9 and before I10: I10 stays last, since it reads the
  verdicts of all the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from asgifuzz._driver.outcome import Outcome
from asgifuzz._oracles.agreement import agreement
from asgifuzz._oracles.background import background
from asgifuzz._oracles.body import request_body
from asgifuzz._oracles.disconnect import disconnect_delivered
from asgifuzz._oracles.extensions import extension_sequences, pathsend_content, trailers
from asgifuzz._oracles.facts import Facts, facts
from asgifuzz._oracles.framing import framing
from asgifuzz._oracles.hangs import no_hang
from asgifuzz._oracles.leaks import leaks
from asgifuzz._oracles.lifespan import (
    failed_startup,
    lifespan_messages,
    state_reaches,
    unsupported_app,
)
from asgifuzz._oracles.raised import exceptions
from asgifuzz._oracles.response import valid_response
from asgifuzz._oracles.sequences import message_sequences
from asgifuzz._oracles.transparency import transparency
from asgifuzz._oracles.violations import Violation
from asgifuzz._oracles.websocket import clean_end, closes, frames, sequences

RunCheck = Callable[[Facts], list[Violation]]


@dataclass(frozen=True, slots=True)
class Invariant:
    """One invariant: its id (``I<n>``), title, the tags its violations carry
    (``<type>``: an exception's or a leaked object's type name; ``""``: none,
    the key is the id alone), and its check."""

    id: str
    title: str
    tags: tuple[str, ...]
    #: Per run: the run's facts -> its violations (None: a case-level check).
    check: RunCheck | None = None
    #: Case-level: the function `verdict.judge` calls with the other runs.
    case_check: Callable[..., list[Violation]] | None = None
    #: The invariants whose verdicts this one reads (I10: all the others).
    needs: tuple[str, ...] = ()


_ALL: tuple[Invariant, ...] = (
    Invariant(
        "I1",
        "a valid response or a clean end",
        ("<type>", "500", "incomplete"),
        valid_response,
    ),
    Invariant(
        "I2",
        "a valid ASGI message sequence",
        (
            "after-final",
            "start-twice",
            "status",
            "headers",
            "body-first",
            "body-type",
            "type",
            "request-after-body",
        ),
        message_sequences,
    ),
    Invariant("I3", "the body as the client sent it", ("",), request_body),
    Invariant(
        "I4", "no hang; streaming streams", ("app", "response", "streaming"), no_hang
    ),
    Invariant(
        "I5",
        "background tasks run once, after the response",
        ("twice", "early", "never", "unfinished", "blocking"),
        background,
    ),
    Invariant(
        "I6",
        "exceptions come out as themselves",
        ("wrapped-before-handler", "reraised", "collapsed", "wrapped", "swallowed"),
        exceptions,
    ),
    Invariant(
        "I7",
        "nothing leaks",
        ("<type>", "asyncgen", "coroutine", "unraisable", "task"),
        leaks,
    ),
    Invariant(
        "I8",
        "pass-through layers are transparent",
        # The first differing field of transparency.FIELDS, with its direction.
        (
            "complete+",
            "complete-",
            "status",
            "escaped+",
            "escaped-",
            "escaped",
            "body+",
            "body-",
            "body",
            "headers+",
            "headers-",
            "headers",
        ),
        case_check=transparency,
    ),
    Invariant(
        "I9",
        "the disconnect reaches who waits for it",
        ("endpoint",),
        disconnect_delivered,
    ),
    Invariant(
        "I11",
        "the response's framing follows HTTP",
        ("no-body", "content-length"),
        framing,
    ),
    # WebSocket runs (``Case.scope == "websocket"``); I7 judges them too.
    Invariant(
        "W1",
        "a valid websocket message sequence",
        (
            "type",
            "after-close",
            "subprotocol",
            "code",
            "reason",
            "frame",
            "order",
            "connect",
            "after-disconnect",
        ),
        sequences,
    ),
    Invariant("W4", "a websocket app ends cleanly", ("hang", "<type>"), clean_end),
    Invariant(
        "W2",
        "websocket frames pass unchanged, in order",
        ("client", "endpoint"),
        frames,
    ),
    Invariant(
        "W3", "close codes and reasons pass unchanged", ("server", "endpoint"), closes
    ),
    Invariant(
        "W5",
        "asyncio and trio agree on a websocket session",
        ("",),
        case_check=agreement,
        needs=("W1", "W2", "W3", "W4", "I7"),
    ),
    # Lifespan sessions (asgifuzz._oracles.lifespan): silent on other cases.
    Invariant(
        "L1",
        "lifespan messages pass through unchanged",
        ("changed", "lost", "invented"),
        lifespan_messages,
    ),
    Invariant(
        "L2",
        "a failing startup is reported as failed",
        ("complete", "hidden"),
        failed_startup,
    ),
    Invariant(
        "L3",
        "the startup's state reaches the requests",
        ("lost", "changed"),
        state_reaches,
    ),
    Invariant(
        "L4",
        "an app without lifespan support is not broken by a layer",
        ("failed", "hang"),
        unsupported_app,
    ),
    # The HTTP extensions (asgifuzz._oracles.extensions).
    Invariant(
        "X1",
        "trailers only after a response announcing them, and none lost",
        ("unannounced", "early", "lost"),
        trailers,
    ),
    Invariant(
        "X2",
        "a pathsend's (or zero-copy send's) body is the file's content",
        ("", "zerocopysend"),
        pathsend_content,
    ),
    Invariant(
        "X3",
        "extension messages only where advertised, in a valid order",
        ("unadvertised", "late", "mixed"),
        extension_sequences,
    ),
    # Last: it reads the verdicts of all the others.
    Invariant(
        "I10",
        "asyncio and trio agree",
        ("",),
        case_check=agreement,
        needs=(
            *(f"I{n}" for n in range(1, 10)),
            "I11",
            *("L1", "L2", "L3", "L4", "X1", "X2", "X3"),
        ),
    ),
)

#: Every invariant by id, in rank order.
INVARIANTS: Mapping[str, Invariant] = MappingProxyType({i.id: i for i in _ALL})
#: The faults of the process that runs a case (the supervisor's and the
#: watchdog's findings, not ASGI invariants), by kind: their titles. They rank
#: before every invariant: a hang or a crash hides what the run would have shown.
FAULTS: Mapping[str, str] = MappingProxyType(
    {
        "hang": "the case ends in bounded wall-clock time",
        "crash": "the process survives the case",
        "resource": "the case stays within its memory",
    }
)
#: Every fault's key.
FAULT_KEYS = ("hang:wall", "crash:exit", "crash:signal", "resource:memory")
_RANKS = {
    **{kind: n - len(FAULTS) for n, kind in enumerate(FAULTS)},
    **{i.id: n for n, i in enumerate(_ALL)},
}
_WS_IDS = ("W1", "W2", "W3", "W4", "I7")
_RUN_CHECKS = tuple(
    i.check for i in _ALL if i.check is not None and not i.id.startswith("W")
)
_WS_CHECKS = tuple(i.check for i in _ALL if i.check is not None and i.id in _WS_IDS)
#: What judges a lifespan session that served no request (startup failed).
_SESSION_CHECKS = (
    leaks,
    lifespan_messages,
    failed_startup,
    state_reaches,
    unsupported_app,
)


def title(invariant: str) -> str:
    """The title of an invariant or of a fault's kind."""
    if invariant in FAULTS:
        return FAULTS[invariant]
    return INVARIANTS[invariant].title


def rank(invariant: str) -> int:
    """Where ``invariant`` (or a fault's kind) sorts in reports: faults first,
    then the lowest (most specific) invariant, I10 last."""
    return _RANKS[invariant]


def judge_outcome(outcome: Outcome) -> list[Violation]:
    """The invariants that one run can judge alone (all but I8 and I10), in
    rank order; ``outcome`` is left as it was."""
    f = facts(outcome)
    out: list[Violation] = []
    if outcome.case.scope == "websocket":
        checks = _WS_CHECKS
    else:
        checks = _RUN_CHECKS if outcome.served else _SESSION_CHECKS
    for check in checks:
        out += check(f)
    return out
