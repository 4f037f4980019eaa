"""Invariant I8: pass-through layers are transparent (a case-level check: it
compares the run with a run of the same case without those layers).

What is compared is what a client sees, not the framing: the status, the
headers other than the framing ones, the body decoded from its
``content-encoding``, whether the response completed, and what escaped the app.
A pass-through layer may change the framing: Starlette's `BaseHTTPMiddleware`
re-sends a one-shot response as a stream (``call_next`` returns a
``StreamingResponse``: the body, then an empty final message). GZip above it
then takes its streaming branch, which compresses whatever the size, drops
``content-length`` and adds ``vary``: the coding, the bytes and the framing
headers differ while the decoded content does not.

A body that a client cannot decode in either run (policy): when both runs'
bodies carry codings that decode here and neither decodes (a broken or
unfinished stream: e.g. a layer that rewrites the bytes above a compressor),
the bodies are not compared. A client sees a decoding error in both, and the
raw bytes are the compressor's own choice, which depends on the framing a
pass-through layer below it produces (a gzip header's fields, one-shot vs
sync-flushed blocks). Only one run's body broken is a difference.

The framing headers (policy): ``content-length`` and ``transfer-encoding``
always; ``content-encoding`` when both bodies decode (their decoded bytes are
compared instead); and the ``accept-encoding`` member of ``vary`` when a GZip
layer made a different compression choice in the two runs. Starlette's
``GZipMiddleware`` (starlette/middleware/gzip.py,
``IdentityResponder.send_with_compression``) calls ``add_vary_header
("Accept-Encoding")`` exactly on the branches where it compresses, chosen on
the first body message it gets: a streamed one (``more_body``) or one of at
least ``minimum_size`` bytes, even for a client that does not accept gzip (the
identity responder takes the same branches); a small one-shot body gets no
``vary``. A pass-through layer below GZip changes that message (it re-sends
the body as a stream) and a `BaseHTTPMiddleware` above GZip may hide the
change from the server (it re-streams both), so the choice is read where GZip
receives the body. A ``vary`` that changes while every GZip chose alike is a
header change like any other.

I8 is judged (policy) only for clients that never hang up (a disconnect
scheduled by the n-th ``receive()`` falls elsewhere once a layer calls
``receive()`` itself); only when the run with the layers ended on its own: it
returned, and its client did not give up waiting unless the reference's did
too (a hung run's response is a snapshot taken at the time limit, nothing has
escaped *yet*; a timed-out one is what the client had when its patience ran
out: I4, or I9 for an endpoint that waits for the disconnect, reports those);
what escaped is compared only between runs that ended alike, both cancelled by
the server (daphne cancels the app after a disconnect) or neither: a cancelled
run let nothing out because it was cut, the other had ended before the cut
(a hidden disconnect is I9's finding, not an ``I8:escaped-``); and, when both
runs raised several of the models' exceptions and what escaped each is made of
them only, not by its type (policy, as I6's: of exceptions raised concurrently
one may win, or all come out as a group; a pass-through `BaseHTTPMiddleware`
between a dispatch that raises after ``call_next`` and a stream that fails lets
the dispatch's win on trio, where the two come out grouped without it, and on
asyncio either way);
and only against a clean reference: the run without the layers must pass
every invariant about its response (all but I5 and I7, which judge what
happens beside it). A reference that fails is a failing case of its own,
which the fuzzer reaches without the pass-through layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from asgifuzz._driver.outcome import Outcome
from asgifuzz._oracles.decoding import content_codings, decode, decoder
from asgifuzz._oracles.exceptions import is_group, members
from asgifuzz._oracles.promises import promises
from asgifuzz._oracles.violations import Violation
from asgifuzz._targets.declarations import Declaration
from asgifuzz._targets.specs import declarations
from asgifuzz.models import Case
from asgifuzz.models._build import layer_name
from asgifuzz.models._parts import PASSTHROUGH_KINDS, Stack

#: The fields a client sees, the most telling first: the tag names the first
#: that differs. A changed completeness is what a client cannot detect (a
#: truncated body presented as whole) or cannot use; then a changed status;
#: what escaped (the server's log, and whether it aborts the connection); the
#: decoded content; the other headers.
FIELDS = ("complete", "status", "escaped", "body", "headers")
#: Headers that only frame the body (always ignored).
_FRAMING = (b"content-length", b"transfer-encoding")
#: The invariants that judge what happens beside the response (background
#: tasks, leaks): a reference that breaks them still shows its response.
_BESIDE = ("I5", "I7")


@dataclass(frozen=True, slots=True)
class ClientView:
    """What a client sees of one run, with what it takes to tell framing apart."""

    status: int | None
    #: Every header but the framing ones and ``vary``, lowercased: (name, value).
    headers: tuple[tuple[bytes, bytes], ...]
    #: The members of ``vary``, lowercased.
    vary: frozenset[bytes]
    #: The body decoded from its codings, or the raw bytes if it cannot be.
    body: bytes
    decoded: bool
    #: Its codings decode here, and the body does not (see the module's docstring).
    broken: bool
    codings: tuple[str, ...]
    #: Each GZip layer's choice (outermost first): whether it took a branch
    #: that adds ``vary: Accept-Encoding`` (None: it got no body).
    compressing: tuple[bool | None, ...]
    complete: bool
    #: The type name of what escaped the app.
    escaped: str | None


def client_view(o: Outcome) -> ClientView:
    """What a client sees of run ``o`` (see `ClientView`)."""
    r = o.response
    codings = content_codings(r.headers)
    body = decode(r.body, codings, whole=r.complete)
    headers: list[tuple[bytes, bytes]] = []
    vary: set[bytes] = set()
    for raw_name, value in r.headers:
        name = raw_name.lower()
        if name == b"vary":
            vary |= {v.strip().lower() for v in value.split(b",") if v.strip()}
        elif name not in _FRAMING:
            headers.append((name, value))
    return ClientView(
        status=r.status,
        headers=tuple(sorted(headers)),
        vary=frozenset(vary),
        body=r.body if body is None else body,
        decoded=body is not None,
        broken=body is None and decoder(codings) is not None,
        codings=codings,
        compressing=_compression_choices(o),
        complete=r.complete,
        escaped=None if o.escaped is None else type(o.escaped).__name__,
    )


def _compression_choices(o: Outcome) -> tuple[bool | None, ...]:
    """Whether each GZip layer of ``o``'s stack took a compressing branch: its
    first body message, as it received it, was streamed or at least
    ``minimum_size`` bytes (see the module's docstring)."""
    rec = o.recorder
    out: list[bool | None] = []
    for i, layer in enumerate(o.case.stack.layers):
        if layer.kind != "starlette.gzip":
            continue
        name = layer_name(i, layer)
        # What GZip receives is what crosses the boundary just inside it.
        inside = rec.boundaries.index(name) + 1 if name in rec.boundaries else -1
        first = next(
            (
                e.message
                for e in rec.events
                if e.kind == "send"
                and e.where == inside
                and (e.message or {}).get("type") == "http.response.body"
            ),
            None,
        )
        if first is None:
            out.append(None)
            continue
        # The model's default minimum_size is 0 (models._middleware).
        least = int(layer.options.get("minimum_size", 0))
        out.append(bool(first.get("more_body")) or len(first.get("body", b"")) >= least)
    return tuple(out)


def _headers(
    a: ClientView, b: ClientView, *, names_only: bool, encoders: bool = False
) -> tuple[tuple[bytes, bytes], ...]:
    """``a``'s headers as compared with ``b``'s (framing ones dropped; with
    ``encoders``, a user layer declared it encodes: its coding and ``vary``)."""
    out = list(a.headers)
    if (a.decoded and b.decoded) or encoders:
        # Both bodies decode: the decoded bytes are compared, not the coding.
        out = [(n, v) for n, v in out if n != b"content-encoding"]
    vary = a.vary
    if encoders or (
        a.compressing != b.compressing and a.vary ^ b.vary <= {b"accept-encoding"}
    ):
        vary -= {b"accept-encoding"}
    if vary:
        out.append((b"vary", b", ".join(sorted(vary))))
    if names_only:
        return tuple(sorted({(n, b"") for n, _ in out}))
    return tuple(sorted(out))


def _more_or_less(with_: bool, without: bool) -> str:
    """``+`` if only ``with_`` holds, ``-`` if only ``without``, else ``""``."""
    return "+" if with_ and not without else "-" if without and not with_ else ""


def differences(
    with_: ClientView,
    without: ClientView,
    *,
    names_only: bool = False,
    declared: Sequence[Declaration] = (),
) -> list[tuple[str, object, object]]:
    """The fields (of `FIELDS`, in order) in which the two views differ, each as
    its tag and its two values; ``names_only`` compares header names only.
    What user layers ``declared`` is no difference: an encoder's coding and
    ``vary: accept-encoding``, and the body of one that makes its own
    (``transforms = ["response-body"]``) or whose coding cannot be decoded here.

    The tag is the field and its direction: ``+`` when the run with the layers
    has more of it (complete where the other is not; an exception escapes
    where none did; a body or headers that extend the other's), ``-`` when it
    has less, nothing when the values are only different.
    """
    out: list[tuple[str, object, object]] = []
    if with_.complete != without.complete:
        way = _more_or_less(with_.complete, without.complete)
        out.append(("complete" + way, with_.complete, without.complete))
    if with_.status != without.status:
        out.append(("status", with_.status, without.status))
    if with_.escaped != without.escaped:
        way = _more_or_less(with_.escaped is not None, without.escaped is not None)
        out.append(("escaped" + way, with_.escaped, without.escaped))
    codings = {c for d in declared for c in d.encodes}
    undecodable = any(
        not v.decoded and set(v.codings) <= codings for v in (with_, without)
    )
    a, b = with_.body, without.body
    both_broken = with_.broken and without.broken
    if (
        a != b
        and not undecodable
        and not both_broken
        and not any(d.response_body for d in declared)
    ):
        way = _more_or_less(a.startswith(b), b.startswith(a))
        out.append(("body" + way, a, b))
    encoders = bool(codings)
    ha = _headers(with_, without, names_only=names_only, encoders=encoders)
    hb = _headers(without, with_, names_only=names_only, encoders=encoders)
    if ha != hb:
        way = _more_or_less(set(ha) > set(hb), set(ha) < set(hb))
        out.append(("headers" + way, ha, hb))
    return out


def without_passthrough(case: Case) -> Case | None:
    """``case`` without its pass-through layers, or None if I8 is not judged.

    Policy: only for clients that never hang up (a disconnect scheduled by the
    n-th ``receive()`` falls elsewhere once a layer calls ``receive()`` itself).
    """
    layers = case.stack.layers
    if case.client.disconnect != "never" or not any(
        la.kind in PASSTHROUGH_KINDS for la in layers
    ):
        return None
    kept = tuple(la for la in layers if la.kind not in PASSTHROUGH_KINDS)
    return replace(case, stack=Stack(layers=kept, mode=case.stack.mode))


#: What escaped a run that raised several of the models' exceptions, when it
#: is made of them only (see the module's docstring).
_MODELS = "the models' exceptions"


def _models_only(o: Outcome) -> bool:
    """Whether the models raised several exceptions in ``o`` and what escaped is
    one of them, or a group of nothing else (the leaves of a group are the
    models' own objects, whatever copies of the groups the machinery made)."""
    if o.escaped is None:
        return False
    ours = {id(e) for r in o.recorder.raised for e in _leaves(r)}
    return len(ours) >= 2 and all(id(e) in ours for e in _leaves(o.escaped))


def _leaves(exc: BaseException) -> list[BaseException]:
    return [e for e in members(exc) if not is_group(e)]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def transparency(
    case: Case,
    outcome: Outcome,
    backend: str,
    run: Callable[[Case, str], Outcome],
    judge: Callable[[Outcome], Sequence[Violation]],
) -> list[Violation]:
    """I8: ``outcome`` (of ``case`` on ``backend``) looks to a client as the
    case's run without its pass-through layers does (made with ``run``, and
    judged with ``judge`` to be a clean reference).

    The tag is the most telling differing field and its direction (see
    `differences`): ``complete+`` is a failed response that looks complete,
    ``complete-`` one the layers leave open. A user layer that declares it
    buffers or encodes passes the body on whole (`promises`, on this run).
    """
    user = any(la.family == "user" for la in case.stack.layers)
    own = promises(outcome) if user else []
    return own or _compared(case, outcome, backend, run, judge)


def _compared(
    case: Case,
    outcome: Outcome,
    backend: str,
    run: Callable[[Case, str], Outcome],
    judge: Callable[[Outcome], Sequence[Violation]],
) -> list[Violation]:
    bare = without_passthrough(case)
    if bare is None or outcome.hung:
        return []
    reference = run(bare, backend)
    if outcome.timed_out and not reference.timed_out:
        return []  # the client gave up on it: what it has is I4's snapshot
    if reference.hung or any(v.invariant not in _BESIDE for v in judge(reference)):
        return []
    # Policy: the user's code may stamp each response (request ids, timings,
    # dates), so only the header names must match.
    names_only = bool(case.app) or any(la.family == "user" for la in case.stack.layers)
    declared = declarations(case) if names_only else ()
    mine, theirs = client_view(outcome), client_view(reference)
    if outcome.app_cancelled != reference.app_cancelled:
        # What escaped a run the server cut is not what it would have let out.
        mine, theirs = replace(mine, escaped=None), replace(theirs, escaped=None)
    elif _models_only(outcome) and _models_only(reference):
        # Several raised concurrently: which wins, or a group of them, is fair.
        mine, theirs = replace(mine, escaped=_MODELS), replace(theirs, escaped=_MODELS)
    found = differences(mine, theirs, names_only=names_only, declared=declared)
    if not found:
        return []
    diffs = "; ".join(f"{tag}: {_shown(a)} vs {_shown(b)}" for tag, a, b in found)
    return [
        Violation(
            "I8",
            "a client sees a different response with the pass-through layers than "
            f"without them ({diffs}; bodies compared decoded, framing headers ignored)",
            found[0][0],
        )
    ]
