"""``http.response.zerocopysend``: the server's side (the bytes it reads from the
file, where it takes the message), the ``zerocopysend`` endpoint, the body
rewriters that strip the extension, and X1-X3 on hand-built transcripts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from asgifuzz._cli.main import main
from asgifuzz._driver.extensions import (
    PATHSEND,
    TRAILERS,
    ZEROCOPYSEND,
    scope_extensions,
    takes,
    zerocopy_bytes,
)
from asgifuzz._driver.outcome import Outcome, ServerResponse
from asgifuzz._driver.runner import run
from asgifuzz._oracles.extensions import (
    extension_sequences,
    pathsend_content,
    trailers,
)
from asgifuzz._oracles.facts import facts
from asgifuzz._oracles.verdict import judge
from asgifuzz._repro.script import render_repro
from asgifuzz._types import Receive, Scope, Send
from asgifuzz.models import (
    Case,
    Client,
    Endpoint,
    Layer,
    Request,
    Server,
    Stack,
    build,
    case_to_data,
)
from asgifuzz.models._extensions import file_of
from asgifuzz.models._parts import response_content
from asgifuzz.models._record import Event, Recorder

CONTENT = b"zero-copy content!"
STRICT2 = Server("strict", http_version="2")
START = {"type": "http.response.start", "status": 200, "headers": []}
ZC_CASE = Case(endpoint=Endpoint("zerocopysend"), server=STRICT2)


@pytest.fixture
def file() -> Iterator[BinaryIO]:
    with open(file_of(CONTENT), "rb") as f:
        yield f


def zc(file: BinaryIO, **fields: Any) -> dict[str, Any]:
    return {"type": ZEROCOPYSEND, "file": file, **fields}


def body(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def test_the_strict_profile_alone_advertises_it_on_http2() -> None:
    assert ZEROCOPYSEND in (scope_extensions("strict", "2") or {})
    others = [("strict", "1.1"), ("uvicorn", "1.1"), ("hypercorn", "2")]
    others += [("granian", "1.1"), ("granian", "2"), ("daphne", "1.1")]
    for profile, version in others:
        assert ZEROCOPYSEND not in (scope_extensions(profile, version) or {})


def test_the_server_reads_offset_count_and_the_files_position(file: BinaryIO) -> None:
    assert zerocopy_bytes(zc(file, offset=5, count=4)) == CONTENT[5:9]
    assert file.tell() == 0  # an offset leaves the position alone
    assert zerocopy_bytes(zc(file, count=4)) == CONTENT[:4]
    assert zerocopy_bytes(zc(file)) == CONTENT[4:]  # from the position to the end
    assert zerocopy_bytes(zc(file, offset=3)) == CONTENT[3:]
    assert zerocopy_bytes(zc(file, offset=len(CONTENT), count=9)) == b""


def test_the_server_takes_it_only_where_advertised_and_in_order(
    file: BinaryIO,
) -> None:
    advertised = scope_extensions("strict", "2")
    response = ServerResponse(started=True, status=200)
    assert takes(response, advertised, zc(file, count=3, more_body=True))
    assert (response.body, response.complete) == (CONTENT[:3], False)
    # After a zero-copy send, no pathsend (it cannot be mixed with bodies).
    assert not takes(response, advertised, {"type": PATHSEND, "path": file.name})
    assert takes(response, advertised, zc(file, offset=3))
    assert (response.body, response.complete) == (CONTENT, True)
    assert response.body_messages == 2
    assert not takes(response, advertised, zc(file))  # after the final body
    assert not takes(ServerResponse(), advertised, zc(file))  # before the start
    elsewhere = ServerResponse(started=True, status=200)
    assert not takes(elsewhere, scope_extensions("granian", "2"), zc(file))


@pytest.mark.parametrize("size", [None, 0, 300, 70_000])
def test_the_endpoint_sends_its_file_where_advertised(
    backend: str, size: int | None
) -> None:
    o = run(Case(endpoint=Endpoint("zerocopysend", size=size), server=STRICT2), backend)
    sent = [(e.message or {}).get("type") for e in o.recorder.events if e.where == 0]
    assert sent.count(ZEROCOPYSEND) == 2
    assert "http.response.body" in sent
    assert o.response.complete
    content = b"hello" if size is None else response_content(size, True)
    assert o.response.body == content == Path(file_of(content)).read_bytes()
    assert not o.warnings  # the file is closed (no ResourceWarning)


@pytest.mark.parametrize(
    "server", [Server("strict"), Server("granian", http_version="2"), Server("uvicorn")]
)
def test_the_endpoint_answers_plainly_elsewhere(backend: str, server: Server) -> None:
    o = run(Case(endpoint=Endpoint("zerocopysend"), server=server), backend)
    sent = [(e.message or {}).get("type") for e in o.recorder.events if e.where == 0]
    assert ZEROCOPYSEND not in sent
    assert (o.response.complete, o.response.body) == (True, b"hello")
    assert not judge(Case(endpoint=Endpoint("zerocopysend"), server=server)).failed


@pytest.mark.parametrize(
    "layer",
    ["asgi.transform_body", "asgi.replace_body", "bhm.transform_body", "bhm.encode"],
)
def test_body_rewriters_strip_it_from_the_scope(layer: str) -> None:
    case = Case(
        endpoint=Endpoint("zerocopysend", size=300),
        server=STRICT2,
        stack=Stack((Layer(layer),)),
    )
    verdict = judge(case)
    assert not verdict.failed
    for o in verdict.outcomes.values():
        rec = o.recorder
        assert ZEROCOPYSEND in rec.advertised[0]
        assert ZEROCOPYSEND not in rec.advertised[len(rec.boundaries) - 1]


def test_pass_through_layers_keep_it_and_the_body_is_the_files() -> None:
    case = Case(
        endpoint=Endpoint("zerocopysend", size=300),
        server=STRICT2,
        stack=Stack((Layer("asgi.passthrough"), Layer("asgi.add_header"))),
    )
    verdict = judge(case)
    assert not verdict.failed
    for o in verdict.outcomes.values():
        inner = o.recorder.events
        assert any((e.message or {}).get("type") == ZEROCOPYSEND for e in inner)


# Hand-built transcripts: server -> app -> endpoint.


def outcome(
    sends: Sequence[dict[str, Any]],
    inner: Sequence[dict[str, Any]],
    *,
    got: bytes,
    outer: tuple[str, ...] = (ZEROCOPYSEND, TRAILERS, PATHSEND),
    got_trailers: Sequence[tuple[bytes, bytes]] = (),
    case: Case = ZC_CASE,
) -> Outcome:
    rec = Recorder(boundaries=["app", "endpoint"])
    rec.advertised = {0: outer, 1: (ZEROCOPYSEND, TRAILERS, PATHSEND)}
    for where, messages in ((1, inner), (0, sends)):
        for m in messages:
            rec.events.append(Event(rec.tick(), 0.0, where, "send", dict(m)))
    response = ServerResponse(True, 200, [], got, len(sends) - 1, True)
    response.trailers = list(got_trailers)
    return Outcome(
        case=case, backend="asyncio", recorder=rec, response=response, returned=True
    )


def keys(o: Outcome) -> list[str]:
    f = facts(o)
    checks = (trailers, pathsend_content, extension_sequences)
    return [v.key for check in checks for v in check(f)]


def endpoint_sends(file: BinaryIO) -> list[dict[str, Any]]:
    """What the ``zerocopysend`` endpoint sends: a third, a body, the rest."""
    return [
        START,
        zc(file, offset=0, count=6, more_body=True),
        body(CONTENT[6:12], True),
        zc(file),
    ]


def test_quiet_on_a_correct_transcript(file: BinaryIO) -> None:
    sends = endpoint_sends(file)
    assert keys(outcome(sends, sends, got=CONTENT)) == []
    # Trailers after a final zero-copy send are in order.
    announced = [{**START, "trailers": True}, *sends[1:]]
    trailer = {"type": TRAILERS, "headers": [(b"x", b"1")], "more_trailers": False}
    both = [*announced, trailer]
    assert keys(outcome(both, both, got=CONTENT, got_trailers=[(b"x", b"1")])) == []
    early = [*announced[:2], trailer, *announced[2:]]
    assert keys(outcome(early, early, got=CONTENT)) == ["X1:early"]


def test_fires_on_a_layer_that_drops_a_zerocopysend(file: BinaryIO) -> None:
    inner = endpoint_sends(file)
    dropped = [m for i, m in enumerate(inner) if i != 1]
    assert keys(outcome(dropped, inner, got=CONTENT[6:])) == ["X2:zerocopysend"]
    # Only the model endpoint is known to send the whole file: an app of the
    # user's (or another endpoint) may send a part of one.
    # Nor is a body judged under a layer that rewrites bodies.
    rewritten = replace(ZC_CASE, stack=Stack((Layer("asgi.transform_body"),)))
    for case in (replace(ZC_CASE, app="shop"), Case(server=STRICT2), rewritten):
        assert keys(outcome(dropped, inner, got=CONTENT[6:], case=case)) == []


def test_fires_on_a_layer_that_forwards_it_where_not_advertised(
    file: BinaryIO,
) -> None:
    sends = endpoint_sends(file)
    assert keys(outcome(sends, sends, got=CONTENT, outer=())) == ["X3:unadvertised"]


def test_fires_on_a_zerocopysend_mixed_with_a_pathsend_or_before_a_hint(
    file: BinaryIO,
) -> None:
    mixed = [START, zc(file, count=3, more_body=True), {"type": PATHSEND, "path": "/x"}]
    assert "X3:mixed" in keys(outcome(mixed, mixed, got=CONTENT))
    hint = {"type": "http.response.early_hint", "links": [b"</a>"]}
    late = [START, zc(file, count=3, more_body=True), hint, zc(file)]
    outer = (ZEROCOPYSEND, "http.response.early_hint")
    assert keys(outcome(late, late, got=CONTENT, outer=outer)) == ["X3:late"]


class DropsFirstZeroCopy:
    """A layer that loses the first ``http.response.zerocopysend`` it is sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dropped = False

        async def lossy(message: dict[str, Any]) -> None:
            nonlocal dropped
            if message["type"] == ZEROCOPYSEND and not dropped:
                dropped = True
                return
            await send(message)

        await self.app(scope, receive, lossy)


def test_a_live_layer_that_drops_one_is_found(backend: str) -> None:
    case = Case(endpoint=Endpoint("zerocopysend", size=300), server=STRICT2)
    app = DropsFirstZeroCopy(build(case, Recorder()))
    o = run(case, backend, app=app)
    assert o.response.complete
    assert len(o.response.body) == 200
    assert [v.key for v in pathsend_content(facts(o))] == ["X2:zerocopysend"]
    assert not o.warnings


def test_repro_refuses_it_naming_the_field() -> None:
    case = Case(endpoint=Endpoint("zerocopysend"), server=STRICT2)
    with pytest.raises(ValueError, match=r"field 'endpoint\.kind' is 'zerocopysend'"):
        render_repro(case, "I1:incomplete")


def test_the_repro_command_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "case.json"
    case = Case(endpoint=Endpoint("zerocopysend"), server=STRICT2)
    path.write_text(json.dumps(case_to_data(case)))
    assert main(["repro", str(path), "--key", "I1:incomplete"]) == 2
    assert "field 'endpoint.kind' is 'zerocopysend'" in capsys.readouterr().err


def test_a_background_task_runs_after_the_zero_copy_sends(backend: str) -> None:
    case = Case(
        endpoint=Endpoint("zerocopysend", background="checkpoint"), server=STRICT2
    )
    o = run(case, backend)
    assert (o.response.complete, o.response.body) == (True, b"hello")
    assert [b.runs for b in o.recorder.background] == [1]


def test_a_layer_that_drops_the_last_one_leaves_the_response_incomplete(
    backend: str,
) -> None:
    # Starlette's GZipMiddleware knows no zero-copy send and drops it: the
    # response never completes, which I1 judges (X2 judges complete ones only).
    case = Case(
        endpoint=Endpoint("zerocopysend", size=300),
        server=STRICT2,
        request=Request(headers=(("accept-encoding", "gzip"),)),
        stack=Stack((Layer("starlette.gzip"),)),
    )
    o = run(case, backend)
    assert not o.response.complete
    f = facts(o)
    assert any(e.message and e.message.get("type") == ZEROCOPYSEND for e in f.sent[-1])
    assert pathsend_content(f) == []


def test_a_client_leaving_after_body_message_n_counts_the_zero_copy_sends(
    backend: str,
) -> None:
    # The first of the endpoint's messages is a zero-copy send: a client that
    # leaves after body message #0 leaves after it, not after the plain
    # http.response.body that ends the response.
    case = replace(ZC_CASE, client=Client("body_message", 0))
    o = run(case, backend)
    assert o.recorder.disconnected is not None
    assert not o.response.complete
    assert o.response.body_messages == 1
    assert b"hello".startswith(o.response.body)
    assert o.response.body != b"hello"
