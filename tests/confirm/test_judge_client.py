"""The wire-level verdicts and the raw client, without a real server: the client
reads canned bytes from a one-connection socket server in a thread."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from asgifuzz._confirm.client import Seen, play
from asgifuzz._confirm.confirm import timing_sensitive, without_passthrough
from asgifuzz._confirm.judge import (
    CONFIRMED,
    NOT_CONFIRMED,
    escaped,
    i8_difference,
    judge,
    wire_reason,
)
from asgifuzz._repro.live import request_head
from asgifuzz.models import Case, Client, Endpoint, Layer, Request, Server, Stack

ECHO = Case(
    endpoint=Endpoint(kind="echo"), request=Request("POST", body=(b"ab", b"cd"))
)


@pytest.mark.parametrize(
    ("case", "key", "says"),
    [
        (Case(app="mine"), "I4:response", "your own code"),
        (Case(server=Server(send_checkpoints=1)), "I4:response", "checkpoints"),
        (Case(client=Client("checkpoints", 3)), "I4:response", "no point on the wire"),
        (Case(server=Server("strict")), "I4:response", "ASGI 2.4"),
        (
            Case(endpoint=Endpoint(kind="zerocopysend"), server=Server("strict")),
            "I1:AssertionError",
            "sends http.response.zerocopysend, which no real server advertises",
        ),
        (Case(), "I4:app", "after the response"),
        (Case(client=Client("receive", 0)), "I4:response", "after the response"),
        (Case(), "I3", "does not echo"),
        (Case(client=Client("response_start")), "I1:500", "left before"),
        (Case(), "I8:escaped+", "reached the server"),
        (Case(), "I7:asyncgen", "the app's inside"),
    ],
)
def test_what_a_client_cannot_see_is_not_confirmable(
    case: Case, key: str, says: str
) -> None:
    assert says in wire_reason(case, key)


@pytest.mark.parametrize(
    "key", ["I4:response", "I3", "I1:500", "I11:no-body", "I8:complete+"]
)
def test_what_a_client_can_see_is_confirmable(key: str) -> None:
    assert wire_reason(ECHO if key == "I3" else Case(), key) == ""


def test_i8_names_the_first_difference_and_its_direction() -> None:
    done = Seen(200, [("content-type", "text/plain")], b"ab", complete=True)
    assert i8_difference(done, Seen(200, [], b"ab")) == "complete+"
    assert i8_difference(Seen(200), done) == "complete-"
    assert i8_difference(Seen(500), Seen(200)) == "status"
    assert i8_difference(Seen(200, body=b"abc"), Seen(200, body=b"ab")) == "body+"
    assert i8_difference(Seen(200, body=b"a"), Seen(200, body=b"ab")) == "body-"
    assert i8_difference(Seen(200, body=b"x"), Seen(200, body=b"y")) == "body"
    assert i8_difference(done, Seen(200, [], b"ab", complete=True)) == "headers+"
    assert i8_difference(Seen(200, [], b"ab", complete=True), done) == "headers-"
    other = Seen(200, [("x-a", "1")], b"ab", complete=True)
    assert i8_difference(done, other) == "headers"
    date = Seen(200, [("date", "now"), ("content-type", "x")], b"ab", complete=True)
    assert i8_difference(done, date) == ""
    assert judge("I8:complete+", Case(), done, Seen(200, [], b"ab")).status == CONFIRMED
    missed = judge("I8:complete+", Case(), done, done)
    assert missed.status == NOT_CONFIRMED
    assert "first difference: none" in missed.detail


def test_hangs_bodies_errors_and_framing_on_the_wire() -> None:
    assert judge("I4:response", Case(), Seen(hung=True)).status == CONFIRMED
    assert (
        judge("I4:response", Case(), Seen(200, complete=True)).status == NOT_CONFIRMED
    )
    right = hashlib.sha256(b"abcd").hexdigest().encode()
    assert judge("I3", ECHO, Seen(200, body=b"x", complete=True)).status == CONFIRMED
    assert (
        judge("I3", ECHO, Seen(200, body=right, complete=True)).status == NOT_CONFIRMED
    )
    assert judge("I3", ECHO, Seen(hung=True)).status == NOT_CONFIRMED
    assert judge("I1:500", Case(), Seen(500, complete=True)).status == CONFIRMED
    assert judge("I1:incomplete", Case(), Seen(200, closed=True)).status == CONFIRMED
    assert judge("I1:500", Case(), Seen(200, complete=True)).status == NOT_CONFIRMED
    assert judge("I1:incomplete", Case(), Seen(closed=True)).status == NOT_CONFIRMED
    declared = Seen(204, [("content-length", "5")], complete=True)
    assert judge("I11:no-body", Case(), declared).status == CONFIRMED
    assert (
        judge("I11:no-body", Case(), Seen(204, complete=True)).status == NOT_CONFIRMED
    )
    assert judge("I11:no-body", Case(), Seen(hung=True)).status == NOT_CONFIRMED
    short = Seen(200, [("content-length", "5")], b"ab", closed=True)
    assert judge("I11:content-length", Case(), short).status == CONFIRMED


def test_an_escaped_exception_is_read_from_the_servers_log() -> None:
    log = (
        "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    raise RuntimeError("No response returned.")\n'
        "RuntimeError: No response returned.\n"
    )
    found = judge("I1:RuntimeError", Case(), Seen(hung=True), log=log)
    assert found.status == CONFIRMED
    assert "logged 'RuntimeError: No response returned.'" in found.detail
    missed = judge("I1:ValueError", Case(), Seen(hung=True), log=log)
    assert missed.status == NOT_CONFIRMED
    assert "logged no ValueError" in missed.detail
    group = "  | ExceptionGroup: one error (1 sub-exception)\n    | app.Boom: deep\n"
    assert escaped(group, "Boom") == "app.Boom: deep"
    assert escaped("KeyError\n", "KeyError") == "KeyError"
    assert escaped("raise RuntimeError: no\n", "RuntimeError") == ""
    assert wire_reason(Case(client=Client("receive", 0)), "I1:RuntimeError") == ""


def test_timing_and_the_reference_case() -> None:
    assert timing_sensitive(ECHO)
    assert timing_sensitive(Case(client=Client("response_start")))
    assert not timing_sensitive(Case(request=Request(body=(b"", b"x"))))
    stack = Stack((Layer("bhm.passthrough"), Layer("bhm.add_header")), "wrap")
    plain = without_passthrough(Case(stack=stack))
    assert plain.stack == Stack((Layer("bhm.add_header"),), "wrap")


def test_the_request_head_is_the_drivers() -> None:
    case = Case(request=Request("POST", "/p", "a=1", (("x-a", "b"),), (b"ab", b"c")))
    assert request_head(case) == (
        b"POST /p?a=1 HTTP/1.1\r\nhost: testserver\r\nx-a: b\r\n"
        b"content-length: 3\r\n\r\n"
    )


@contextmanager
def canned(*replies: bytes, close: bool = True) -> Iterator[tuple[int, list[bytes]]]:
    """A server for one connection: reads the request head, writes ``replies``
    (one write each), then closes (or waits for the client to)."""
    listener = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            try:
                for reply in replies:
                    conn.sendall(reply)
                if not close:
                    while chunk := conn.recv(4096):
                        data += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass  # the client hung up first, as some cases say it does
            got.append(data)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[1], got
    finally:
        thread.join(10)
        listener.close()


CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("replies", "body", "complete", "closed"),
    [
        ([CHUNKED, b"2\r\nab\r\n", b"1;x=y\r\nc\r\n0\r\n\r\n"], b"abc", True, False),
        ([CHUNKED, b"2\r\nab\r\n"], b"ab", False, True),
        ([CHUNKED, b"5\r\nab"], b"", False, True),
        (
            [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab", b"cd"],
            b"abcd",
            True,
            False,
        ),
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab"], b"ab", False, True),
        ([b"HTTP/1.1 200 OK\r\n\r\nuntil", b" close"], b"until close", False, True),
        (
            [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No\r\n\r\n"],
            b"",
            True,
            False,
        ),
        ([b"HTTP/1.1 200 OK\r\n"], b"", False, True),
    ],
)
def test_the_client_reads_each_framing(
    replies: list[bytes], body: bytes, complete: bool, closed: bool
) -> None:
    with canned(*replies) as (port, _):
        seen = play(Case(), port, 5.0)
    assert (seen.body, seen.complete, seen.closed, seen.hung) == (
        body,
        complete,
        closed,
        False,
    )


def test_the_client_calls_a_silent_server_hung() -> None:
    with canned(CHUNKED, close=False) as (port, _):
        seen = play(Case(), port, 0.2)
    assert seen.hung
    assert not seen.closed
    assert seen.status == 200
    assert "hung" in seen.describe()


def test_the_client_hangs_up_where_the_case_says() -> None:
    case = Case(
        request=Request("POST", body=(b"ab", b"cd")), client=Client("receive", 1)
    )
    with canned(close=False) as (port, got):
        seen = play(case, port, 5.0)
    assert seen.left == "after body chunk #1 was sent"
    assert seen.status is None
    assert got[0].endswith(b"\r\n\r\nab")
    with canned(CHUNKED, b"1\r\na\r\n", close=False) as (port, _):
        seen = play(Case(client=Client("response_start")), port, 5.0)
    assert (seen.status, seen.body, seen.left) == (
        200,
        b"",
        "after the status line arrived",
    )
    with canned(CHUNKED, b"1\r\na\r\n", b"1\r\nb\r\n", close=False) as (port, _):
        seen = play(Case(client=Client("body_message", 1)), port, 5.0)
    assert (seen.body, seen.left) == (b"ab", "after body chunk #1 was read")
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n"
    with canned(head, b"a", close=False) as (port, _):
        seen = play(Case(client=Client("body_message", 0)), port, 5.0)
    assert (seen.body, seen.left) == (b"a", "after body chunk #0 was read")
    assert "the client hung up after body chunk #0" in seen.describe()


def test_a_head_response_has_no_body() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    with canned(head) as (port, _):
        seen = play(Case(request=Request("HEAD")), port, 5.0)
    assert seen.complete
    assert seen.body == b""
    assert Seen().describe() == "no response"
