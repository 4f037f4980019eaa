"""I8 judges what a client sees: decoded bodies, headers but the framing ones,
completeness, status, what escaped; the tag names the first differing field
and its direction; a hung run or a failing reference is not judged."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from test_oracles import outcome

from asgifuzz._corpus.entries import load_corpus, starlette_version
from asgifuzz._driver.outcome import Outcome, ServerResponse
from asgifuzz._driver.runner import run
from asgifuzz._errors import ModelError
from asgifuzz._oracles.registry import INVARIANTS
from asgifuzz._oracles.transparency import (
    FIELDS,
    client_view,
    transparency,
    without_passthrough,
)
from asgifuzz._oracles.verdict import judge, violation_class
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Server, Stack
from asgifuzz.models._build import layer_name
from asgifuzz.models._record import Event, Recorder

CORPUS = Path(__file__).parents[2] / "corpus"
PASS = Case(stack=Stack((Layer("bhm.passthrough"),)))
TEXT = (b"content-type", b"text/plain; charset=utf-8")
HELLO = b"hello"


def streamed_gzip(*chunks: bytes, end: bool = True) -> bytes:
    """What Starlette 1.10's GZip sends of a stream: each chunk sync-flushed."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = b"".join(c.compress(x) + c.flush(zlib.Z_SYNC_FLUSH) for x in chunks)
    return out + (c.flush() if end else b"")


def response(
    body: bytes,
    *headers: tuple[bytes, bytes],
    messages: int = 1,
    complete: bool = True,
    status: int = 200,
) -> ServerResponse:
    return ServerResponse(True, status, list(headers), body, messages, complete)


def one_shot(body: bytes = HELLO, *headers: tuple[bytes, bytes]) -> ServerResponse:
    """A plain response: content-length and the body in one message."""
    return response(body, TEXT, (b"content-length", b"%d" % len(body)), *headers)


GZIP_500 = Layer("starlette.gzip", options={"minimum_size": 500})


def gzip_run(
    response: ServerResponse, *, gets: bytes, streamed: bool, passthrough: bool
) -> Outcome:
    """A run of GZip (above a pass-through layer, or alone) whose GZip got
    ``gets`` as its first body message (``streamed``: with more to come)."""
    layers = (GZIP_500, Layer("bhm.passthrough")) if passthrough else (GZIP_500,)
    names = [layer_name(i, la) for i, la in enumerate(layers)]
    rec = Recorder(boundaries=["ServerErrorMiddleware", *names, "endpoint"])
    first = {"type": "http.response.body", "body": gets, "more_body": streamed}
    rec.events.append(Event(rec.tick(), 0.0, 2, "send", first))  # inside GZip
    case = Case(stack=Stack(layers))
    return Outcome(case, "asyncio", rec, returned=True, response=response)


def clean(o: Outcome) -> list[Violation]:
    return []


def i8(
    with_: Outcome | ServerResponse,
    without: Outcome | ServerResponse,
    case: Case = PASS,
    reference: Callable[[Outcome], Sequence[Violation]] = clean,
) -> list[Violation]:
    a = with_ if isinstance(with_, Outcome) else outcome(case, response=with_)
    b = without if isinstance(without, Outcome) else outcome(response=without)
    return transparency(case, a, "asyncio", lambda c, backend: b, reference)


def keys(
    with_: Outcome | ServerResponse, without: Outcome | ServerResponse, **kw: object
) -> list[str]:
    return [v.key for v in i8(with_, without, **kw)]  # type: ignore[arg-type]


# --- framing is not a difference ----------------------------------------------


def test_gzip_streamed_vs_one_shot_identity_is_not_a_difference() -> None:
    """GZip above a pass-through BaseHTTPMiddleware: the re-sent stream is
    compressed (no content-length, vary added), the one-shot one is not."""
    streamed = response(
        streamed_gzip(HELLO),
        TEXT,
        (b"content-encoding", b"gzip"),
        (b"vary", b"Accept-Encoding"),
        messages=2,
    )
    with_ = gzip_run(streamed, gets=HELLO, streamed=True, passthrough=True)
    bare = gzip_run(one_shot(), gets=HELLO, streamed=False, passthrough=False)
    assert client_view(with_).body == HELLO
    assert client_view(with_).compressing == (True,)
    assert client_view(bare).compressing == (False,)
    assert keys(with_, bare, case=with_.case) == []


def test_two_gzip_framings_of_one_content_are_not_a_difference() -> None:
    streamed = response(
        streamed_gzip(b"hel", b"lo"),
        TEXT,
        (b"content-encoding", b"gzip"),
        (b"vary", b"Accept-Encoding"),
        messages=3,
    )
    whole = gzip.compress(HELLO)
    compressed = one_shot(
        whole, (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")
    )
    assert streamed.body != compressed.body
    assert keys(streamed, compressed) == []


def test_changed_decoded_bytes_are_a_difference() -> None:
    streamed = response(
        streamed_gzip(b"hellO"), TEXT, (b"content-encoding", b"gzip"), messages=2
    )
    assert keys(streamed, one_shot()) == ["I8:body"]
    cut = response(
        streamed_gzip(b"hel"), TEXT, (b"content-encoding", b"gzip"), messages=2
    )
    assert keys(cut, one_shot()) == ["I8:body-"]
    assert keys(one_shot(b"hello world"), one_shot()) == ["I8:body+"]


def test_vary_accept_encoding_that_comes_with_gzips_choice_is_framing() -> None:
    """GZip's identity responder: a streamed body gets vary, a small one-shot
    one does not; nothing is compressed either way. A BaseHTTPMiddleware above
    GZip re-streams both, so the server sees two streams: the choice is read
    where GZip gets the body."""
    vary = (b"vary", b"Accept-Encoding")
    streamed = response(HELLO, TEXT, (b"content-length", b"5"), vary, messages=2)
    restreamed = response(HELLO, TEXT, (b"content-length", b"5"), messages=2)
    for bare_response in (one_shot(), restreamed):
        with_ = gzip_run(streamed, gets=HELLO, streamed=True, passthrough=True)
        bare = gzip_run(bare_response, gets=HELLO, streamed=False, passthrough=False)
        assert keys(with_, bare, case=with_.case) == []


def test_vary_that_changes_while_gzip_chose_alike_is_a_difference() -> None:
    vary = (b"vary", b"Accept-Encoding")
    with_vary = one_shot(HELLO, vary)
    assert keys(with_vary, one_shot()) == ["I8:headers+"]  # no GZip: no choice
    assert keys(one_shot(), with_vary) == ["I8:headers-"]
    alike = (
        gzip_run(with_vary, gets=HELLO, streamed=True, passthrough=True),
        gzip_run(one_shot(), gets=HELLO, streamed=True, passthrough=False),
    )
    assert keys(*alike, case=alike[0].case) == ["I8:headers+"]
    # Another member of vary counts even when GZip chose differently.
    streamed = response(HELLO, TEXT, (b"vary", b"Accept-Encoding, Origin"), messages=2)
    apart = (
        gzip_run(streamed, gets=HELLO, streamed=True, passthrough=True),
        gzip_run(one_shot(), gets=HELLO, streamed=False, passthrough=False),
    )
    assert keys(*apart, case=apart[0].case) == ["I8:headers+"]


def test_a_complete_body_whose_coding_does_not_end_is_compared_raw() -> None:
    """A client's decoder fails on it: it is not the same content."""
    unended = response(
        streamed_gzip(HELLO, end=False),
        TEXT,
        (b"content-encoding", b"gzip"),
        messages=2,
    )
    assert not client_view(outcome(response=unended)).decoded
    assert keys(unended, one_shot()) == ["I8:body"]


def test_bodies_that_break_in_both_runs_are_not_compared() -> None:
    """Both runs' gzip streams broken (a layer rewrote the bytes above the
    compressor): a client decodes neither, and the raw bytes are the
    compressor's framing-dependent choice. One broken run is a difference."""
    gz = (b"content-encoding", b"gzip")
    streamed = response(streamed_gzip(HELLO).swapcase(), TEXT, gz, messages=2)
    whole = one_shot(gzip.compress(HELLO, mtime=1).swapcase(), gz)
    assert streamed.body != whole.body
    assert client_view(outcome(response=streamed)).broken
    assert keys(streamed, whole) == []
    assert keys(streamed, one_shot(gzip.compress(HELLO), gz)) == ["I8:body"]
    unknown = (b"content-encoding", b"compress")
    assert not client_view(outcome(response=one_shot(b"\x1f\x9d", unknown))).broken
    assert keys(one_shot(b"\x1f\x9d", unknown), one_shot(b"\x1f\x9e", unknown)) == [
        "I8:body"
    ]


def test_a_body_transform_above_gzip_above_a_passthrough_is_transparent() -> None:
    """The case a fuzz of starlette-compress shrank to (scripts/ecosystem), with
    Starlette's GZip in its place: the swapcased gzip decodes in neither run,
    and GZip's bytes differ with the framing the pass-through below it makes."""
    case = Case(
        stack=Stack(
            (
                Layer("bhm.transform_body"),
                Layer("bhm.passthrough"),
                Layer("starlette.gzip"),
                Layer("bhm.passthrough"),
            )
        ),
        request=Request(headers=(("accept-encoding", "gzip"),)),
    )
    bare = without_passthrough(case)
    assert bare is not None
    a, b = run(case, "asyncio").response, run(bare, "asyncio").response
    if a.body == b.body:  # GZip of this release compresses alike in both framings
        pytest.skip("the raw bodies do not differ on this Starlette: nothing to judge")
    verdict = judge(case)
    assert [v.key for vs in verdict.violations.values() for v in vs] == []


def test_an_unknown_coding_is_compared_raw_with_its_header() -> None:
    compress = (b"content-encoding", b"compress")
    assert keys(one_shot(b"\x1f\x9d", compress), one_shot(b"\x1f\x9d", compress)) == []
    assert keys(one_shot(b"\x1f\x9d", compress), one_shot(b"\x1f\x9d")) == [
        "I8:headers+"
    ]


# --- what a client sees, and the tags ----------------------------------------


def test_a_truncated_body_presented_as_complete_is_complete_plus() -> None:
    err = ModelError("the endpoint (while streaming)")
    chunk = b"data: 0\n\n"
    looks_whole = outcome(
        PASS, response=response(chunk, TEXT, messages=2), escaped=err, raised=[err]
    )
    cut = outcome(
        response=response(chunk, TEXT, complete=False), escaped=err, raised=[err]
    )
    assert keys(looks_whole, cut) == ["I8:complete+"]
    assert keys(cut, looks_whole) == ["I8:complete-"]


def test_one_bug_one_key_whatever_else_differs() -> None:
    """The tag is the most telling field; the others are in the message."""
    whole = response(b"data: 0\n\n", TEXT, messages=2)
    for cut in (
        outcome(response=response(b"data: 0\n\n", TEXT, complete=False)),
        outcome(response=response(b"data: 0\n\nda", TEXT, complete=False)),
        outcome(
            response=response(b"", TEXT, (b"x-a", b"1"), complete=False),
            escaped=ModelError("x"),
        ),
    ):
        (v,) = i8(whole, cut)
        assert v.key == "I8:complete+"
    assert "complete+: True vs False; escaped-: None vs 'ModelError'" in v.message
    assert "body+: b'data: 0\\n\\n' vs b''" in v.message
    assert "headers-" in v.message


def test_a_changed_header_value_is_headers() -> None:
    a = one_shot(HELLO, (b"x-a", b"1"))
    assert keys(a, one_shot(HELLO, (b"x-a", b"2"))) == ["I8:headers"]
    # Header names are case-insensitive; content-length only frames.
    same = response(HELLO, (b"Content-Type", TEXT[1]), (b"X-A", b"1"), messages=2)
    assert keys(same, a) == []


def test_a_changed_status_is_status() -> None:
    assert keys(response(HELLO, TEXT, status=500), response(HELLO, TEXT)) == [
        "I8:status"
    ]


def test_what_escaped_and_which_way() -> None:
    r = one_shot()
    err = ModelError("bg")
    escaped = outcome(PASS, response=r, escaped=err, raised=[err])
    nothing = outcome(response=r, raised=[err])
    other = outcome(PASS, response=r, escaped=RuntimeError("x"), raised=[err])
    assert keys(nothing, escaped) == ["I8:escaped-"]
    assert keys(escaped, nothing) == ["I8:escaped+"]
    assert keys(other, escaped) == ["I8:escaped"]


def test_user_code_compares_header_names_only() -> None:
    user = Case(stack=Stack((Layer("bhm.passthrough"), Layer("user.Stamp"))))
    a = one_shot(HELLO, (b"x-request-id", b"1"))
    assert keys(a, one_shot(HELLO, (b"x-request-id", b"2")), case=user) == []
    assert keys(a, one_shot(), case=user) == ["I8:headers+"]


def test_every_tag_is_in_the_registry_and_names_a_field() -> None:
    tags = INVARIANTS["I8"].tags
    assert all(t.rstrip("+-") in FIELDS for t in tags)
    assert {"complete+", "complete-", "escaped-", "headers", "status"} <= set(tags)


def test_each_direction_is_its_own_failure_class() -> None:
    more, less = violation_class("I8:complete+"), violation_class("I8:complete-")
    assert more is not less
    assert (more.__name__, less.__name__) == (
        "InvariantViolationI8CompleteMore",
        "InvariantViolationI8CompleteLess",
    )
    assert (
        violation_class("I2:after-final").__name__ == "InvariantViolationI2AfterFinal"
    )


# --- when I8 is judged --------------------------------------------------------


def test_a_hung_run_is_not_compared() -> None:
    """A hung run's response is a snapshot: nothing escaped *yet* (I4/I9's)."""
    err = ModelError("bg")
    hung = outcome(PASS, response=one_shot(), raised=[err], hung=True)
    escaped = outcome(response=one_shot(), escaped=err, raised=[err])
    assert keys(hung, escaped) == []
    assert keys(outcome(PASS, response=one_shot(), raised=[err]), escaped) == [
        "I8:escaped-"
    ]
    # Nor is a reference that hung.
    assert keys(escaped, outcome(response=one_shot(), raised=[err], hung=True)) == []


def test_a_run_whose_client_gave_up_is_not_compared() -> None:
    """What the client had when its patience ran out is I4's (I9's) finding;
    two runs that both wait for the client to leave are compared."""
    open_ = response(b"", TEXT, complete=False)
    gave_up = outcome(PASS, response=open_, timed_out=True)
    assert keys(gave_up, one_shot()) == []
    assert keys(outcome(PASS, response=open_), one_shot()) == ["I8:complete-"]
    bye = one_shot(b"bye")
    waited = outcome(response=bye, timed_out=True)
    assert keys(outcome(PASS, response=bye, timed_out=True), waited) == []
    assert keys(outcome(PASS, response=one_shot(b"by"), timed_out=True), waited) == [
        "I8:body-"
    ]


@pytest.mark.parametrize(
    ("reference_fails", "judged"),
    [((), True), (("I5", "I7"), True), (("I1",), False), (("I4",), False)],
)
def test_only_a_clean_reference_is_compared(
    reference_fails: tuple[str, ...], judged: bool
) -> None:
    """A reference that fails an invariant about its response is a failing
    case of its own; one with a leak or a background task failure is not."""

    def reference(o: Outcome) -> list[Violation]:
        return [Violation(i, "x", "t") for i in reference_fails]

    got = keys(one_shot(HELLO, (b"x-a", b"1")), one_shot(), reference=reference)
    assert got == (["I8:headers+"] if judged else [])


def test_not_judged_without_a_passthrough_or_for_a_client_that_leaves() -> None:
    assert without_passthrough(Case()) is None
    leaves = Case(stack=PASS.stack, client=Client("receive"))
    assert without_passthrough(leaves) is None
    assert keys(one_shot(HELLO, (b"x-a", b"1")), one_shot(), case=leaves) == []


# --- real runs ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "stream", "json"])
@pytest.mark.parametrize("accept", [True, False])
@pytest.mark.parametrize("minimum_size", [0, 500])
@pytest.mark.parametrize("above", [(), ("bhm.catch",)])
def test_gzip_above_a_passthrough_is_transparent(
    kind: str, accept: bool, minimum_size: int, above: tuple[str, ...]
) -> None:
    """The I8:body and I8:headers that a fuzz of Starlette 1.10.0 gave: the
    framing differs (checked), what a client sees does not; also with a
    BaseHTTPMiddleware above GZip, which re-streams both runs' responses."""
    case = Case(
        stack=Stack(
            (
                *(Layer(k) for k in above),
                Layer("starlette.gzip", options={"minimum_size": minimum_size}),
                Layer("bhm.passthrough"),
            )
        ),
        endpoint=Endpoint(kind, chunks=3),
        request=Request(headers=(("accept-encoding", "gzip"),) if accept else ()),
    )
    verdict = judge(case)
    assert [
        v.key for vs in verdict.violations.values() for v in vs if v.invariant == "I8"
    ] == []
    if kind != "stream" and accept and not above:  # GZip compresses the stream
        bare = without_passthrough(case)
        assert bare is not None
        a, b = verdict.outcomes["asyncio"].response, run(bare, "asyncio").response
        assert (sorted(a.headers), a.body) != (sorted(b.headers), b.body)


I8_ENTRIES = [e for e in load_corpus(CORPUS) if e.key.startswith("I8")]


@pytest.mark.parametrize("entry", I8_ENTRIES, ids=[e.path.stem for e in I8_ENTRIES])
def test_the_i8_corpus_entries_on_this_release(entry: object) -> None:
    """Each I8 entry shows its (directed) key where it says it is affected."""
    from asgifuzz._corpus.entries import Entry

    assert isinstance(entry, Entry)
    verdict = judge(entry.case)
    for backend in entry.backends:
        seen = [v.key for v in verdict.violations[backend]]
        assert (entry.key in seen) == entry.affects(starlette_version()), seen


def test_the_failed_stream_entry_is_complete_plus() -> None:
    (entry,) = [
        e for e in I8_ENTRIES if e.path.stem == "bhm-failed-stream-looks-complete"
    ]
    assert entry.key == "I8:complete+"


def test_another_bugs_hang_is_no_transparency_failure() -> None:
    """A pass-through BaseHTTPMiddleware above a layer polling
    is_disconnected() hides the disconnect (corpus: bhm-hides-disconnect-from-
    is-disconnected): the run hangs, and nothing has escaped when it is cut;
    without the layer the endpoint's background task raises. That is I9's
    finding, not a difference of transparency (it used to be I8:escaped)."""
    case = Case(
        stack=Stack((Layer("bhm.passthrough"), Layer("asgi.poll_disconnect"))),
        endpoint=Endpoint("poll_disconnect", background="raise"),
    )
    verdict = judge(case, ("asyncio",))
    if not verdict.outcomes["asyncio"].hung:
        pytest.skip("the disconnect is not hidden on this release")
    got = [v.key for v in verdict.violations["asyncio"]]
    assert "I9:endpoint" in got
    assert not [k for k in got if k.startswith("I8")]


def test_another_bugs_timeout_is_no_transparency_failure() -> None:
    """Polling is_disconnected() below a pass-through BaseHTTPMiddleware drops
    the request body (corpus: is-disconnected-drops-body-hang): the echo
    endpoint waits until the client gives up. I4:response is the finding; the
    open response and the ClientDisconnect after it used to be I8:complete-."""
    case = Case(
        stack=Stack((Layer("bhm.passthrough"), Layer("asgi.poll_disconnect"))),
        endpoint=Endpoint("echo"),
    )
    verdict = judge(case, ("asyncio",))
    if not verdict.outcomes["asyncio"].timed_out:
        pytest.skip("the body is not dropped here on this release")
    got = [v.key for v in verdict.violations["asyncio"]]
    assert "I4:response" in got
    assert not [k for k in got if k.startswith("I8")]


def test_what_escaped_a_run_the_server_cut_is_not_compared() -> None:
    """Daphne cancels the app 10 s after a disconnect: nothing escapes a run
    it cut, whatever the other run (which ended before) let out; two runs it
    cut, or two it did not, are compared."""
    err = ModelError("the endpoint")
    cut = outcome(PASS, response=one_shot(), raised=[err], app_cancelled=True)
    escaped = outcome(response=one_shot(), escaped=err, raised=[err])
    assert keys(cut, escaped) == []
    assert keys(outcome(PASS, response=one_shot(), raised=[err]), escaped) == [
        "I8:escaped-"
    ]
    both = outcome(response=one_shot(), escaped=err, raised=[err], app_cancelled=True)
    assert keys(cut, both) == ["I8:escaped-"]
    # What else differs still counts.
    assert keys(cut, outcome(response=one_shot(b"bye"), escaped=err)) == ["I8:body"]


def test_a_disconnect_hidden_until_daphne_cuts_is_i9_alone() -> None:
    """The I8:escaped- of a 600 s run on 1.10.0: a pass-through
    BaseHTTPMiddleware above asgi.raise_after hides the disconnect from an
    endpoint polling is_disconnected() (corpus: bhm-hides-disconnect-from-
    is-disconnected) until daphne cancels the app; without the layer the
    endpoint sees the disconnect and raises. One bug: I9:endpoint."""
    case = Case(
        stack=Stack((Layer("bhm.passthrough"), Layer("asgi.raise_after"))),
        endpoint=Endpoint("poll_disconnect"),
        server=Server("daphne"),
    )
    verdict = judge(case, ("asyncio", "trio"))
    for backend in ("asyncio", "trio"):
        if not verdict.outcomes[backend].app_cancelled:
            pytest.skip("the disconnect is not hidden on this release")
        got = [v.key for v in verdict.violations[backend]]
        assert got == ["I9:endpoint"]


def test_of_several_raised_one_or_a_group_of_them_is_fair() -> None:
    """Policy (as I6's): when the models raised several exceptions, which one
    wins, or a group of them, is no difference; anything else that escaped
    still is, and so is a group of the one exception the models raised."""
    a, b = ModelError("the dispatch"), ModelError("the endpoint")
    grouped = ExceptionGroup("two", [a, ExceptionGroup("one", [b])])
    one = outcome(PASS, response=one_shot(), escaped=a, raised=[a, b])
    both = outcome(response=one_shot(), escaped=grouped, raised=[a, b])
    assert keys(one, both) == []
    assert keys(both, one) == []
    other = outcome(PASS, response=one_shot(), escaped=RuntimeError("x"), raised=[a, b])
    assert keys(other, both) == ["I8:escaped"]
    mixed = ExceptionGroup("two", [a, RuntimeError("x")])
    assert keys(one, outcome(response=one_shot(), escaped=mixed, raised=[a, b])) == [
        "I8:escaped"
    ]
    alone = outcome(PASS, response=one_shot(), escaped=a, raised=[a])
    wrapped = outcome(response=one_shot(), escaped=ExceptionGroup("1", [a]), raised=[a])
    assert keys(alone, wrapped) == ["I8:escaped"]
    assert keys(outcome(PASS, response=one_shot(), raised=[a, b]), both) == [
        "I8:escaped-"
    ]


def test_a_passthrough_between_a_dispatch_and_a_failing_stream_is_i8_clean() -> None:
    """The I8:escaped of the ecosystem campaign (starlette-context,
    opentelemetry, starlette-exporter, uvicorn's proxy headers, timing-asgi,
    starlette-compress; each swapped case): `bhm.raise_after` over a
    pass-through `BaseHTTPMiddleware` over a stream that fails. On trio the
    two exceptions come out grouped without the pass-through layer, the
    dispatch's alone with it (and alone on asyncio either way): of two raised
    concurrently, one may win. Not a finding."""
    case = Case(
        stack=Stack((Layer("bhm.raise_after"), Layer("bhm.passthrough"))),
        endpoint=Endpoint("raise_streaming", chunks=0),
    )
    verdict = judge(case, ("trio",))
    bare = judge(without_passthrough(case) or case, ("trio",))
    escaped = (verdict.outcomes["trio"].escaped, bare.outcomes["trio"].escaped)
    if type(escaped[0]) is type(escaped[1]):
        pytest.skip("what escapes does not differ on this release")
    assert [v.key for v in verdict.violations["trio"]] == []
