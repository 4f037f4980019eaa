"""The server profiles against the real servers: every claim the driver relies
on, measured with the probe app on real uvicorn, hypercorn, daphne and granian
processes (daphne and granian skipped, saying why, where they are not installed)."""

from __future__ import annotations

import dataclasses

import pytest

from asgifuzz._confirm import conformance
from asgifuzz._confirm.conformance import CLAIMS, check, main
from asgifuzz._confirm.mismatch import Mismatch
from asgifuzz._confirm.probe import LARGE
from asgifuzz._confirm.serve import SERVERS, missing
from asgifuzz._driver import server as profiles
from asgifuzz._types import Message
from asgifuzz.models import Case, Server

pytest.importorskip("uvicorn", reason="the servers extra is not installed")
pytest.importorskip("hypercorn", reason="the servers extra is not installed")

EVERY_SERVER = [
    pytest.param(s, marks=pytest.mark.skipif(bool(missing(s)), reason=missing(s)))
    for s in SERVERS
]


@pytest.mark.parametrize("server", EVERY_SERVER)
def test_the_profile_conforms_to_the_real_server(server: str) -> None:
    mismatches, where = check(server)
    assert where.startswith(f"{server} ")
    assert not mismatches, "\n".join(map(str, mismatches))


def test_an_unread_body_dropped_by_the_profile_but_delivered_by_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deliberately wrong: hypercorn would drop the unread body, as uvicorn does.
    monkeypatch.setattr(profiles, "DROP_BODY_ON_DISCONNECT", ("uvicorn", "hypercorn"))
    mismatches, where = check("hypercorn")
    assert where.startswith("hypercorn 0.")
    assert [str(m) for m in mismatches] == [
        "profile 'hypercorn', claim 'receive() once the client sent its body and "
        "hung up, before the app read it': the profile says 'http.disconnect', "
        f"{where} does 'http.request'"
    ]


def test_a_wrong_error_after_the_complete_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deliberately wrong: hypercorn would raise RuntimeError, as uvicorn does.
    monkeypatch.setattr(profiles, "UnexpectedMessageError", RuntimeError)
    mismatches, where = check("hypercorn")
    assert [str(m) for m in mismatches] == [
        "profile 'hypercorn', claim 'send() of another body chunk after the final "
        "one (the client connected)': the profile says 'raises RuntimeError', "
        f"{where} does 'raises UnexpectedMessageError'"
    ]


def _delivered_as(
    monkeypatch: pytest.MonkeyPatch, wrong: dict[str, str | None]
) -> None:
    """Deliberately wrong: the profiles in ``wrong`` deliver a body as the one
    it names does (None: as two empty messages, the last one final)."""
    right = profiles.body_messages

    def body_messages(case: Case) -> list[Message]:
        name = case.server.name
        if name not in wrong:
            return right(case)
        if wrong[name] is None:
            return [
                {"type": "http.request", "body": b"", "more_body": True},
                {"type": "http.request", "body": b"", "more_body": False},
            ]
        return right(dataclasses.replace(case, server=Server(wrong[name] or name)))

    monkeypatch.setattr(profiles, "body_messages", body_messages)


@pytest.mark.skipif(bool(missing("daphne")), reason=missing("daphne"))
def test_a_profile_that_does_not_slice_a_large_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _delivered_as(monkeypatch, {"daphne": "uvicorn"})
    mismatches, where = check("daphne")
    assert where.startswith("daphne 4.")
    assert [str(m) for m in mismatches] == [
        f"profile 'daphne', claim 'a {LARGE}-byte body in one write comes in "
        "http.request messages of at most 8192 bytes': the profile says False, "
        f"{where} does True"
    ]


def test_a_profile_that_splits_an_empty_body(monkeypatch: pytest.MonkeyPatch) -> None:
    _delivered_as(monkeypatch, {"uvicorn": None})
    mismatches, where = check("uvicorn")
    claims = [m.claim for m in mismatches]
    assert (
        "a request without a body is one empty http.request, more_body=False" in claims
    )
    assert all(m.server == where for m in mismatches)


def test_a_wrong_claim_fails_with_the_claim_and_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deliberately wrong: uvicorn would send http.disconnect once, as hypercorn does.
    monkeypatch.setattr(profiles, "DISCONNECT_ONCE", ("uvicorn", "hypercorn", "daphne"))
    mismatches, where = check("uvicorn")
    shown = [str(m) for m in mismatches]
    assert shown == [
        "profile 'uvicorn', claim 'receive() twice after the response is complete': "
        f"the profile says ['http.disconnect', 'blocks'], {where} does "
        "['http.disconnect', 'http.disconnect']",
        "profile 'uvicorn', claim 'receive() twice after the client hung up (does "
        "http.disconnect repeat?)': the profile says ['http.disconnect', 'blocks'], "
        f"{where} does ['http.disconnect', 'http.disconnect']",
    ]


def test_another_profile_is_told_apart(capsys: pytest.CaptureFixture[str]) -> None:
    mismatches, _ = check("uvicorn", profile="hypercorn")
    claims = {m.claim for m in mismatches}
    assert "scope['asgi']['spec_version']" in claims
    assert "the final http.request carries data" in claims
    assert claims <= {c for c, _, _ in CLAIMS}


def test_the_script_exits_by_the_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hypercorn"]) == 0
    assert "profile 'hypercorn' on hypercorn " in capsys.readouterr().out
    wrong = {**profiles.SPEC_VERSIONS, "hypercorn": "2.4"}
    monkeypatch.setattr(profiles, "SPEC_VERSIONS", wrong)
    assert main(["hypercorn"]) == 1
    out = capsys.readouterr().out
    assert "1 mismatches" in out
    assert (
        "MISMATCH profile 'hypercorn', claim \"scope['asgi']['spec_version']\"" in out
    )


def test_a_probe_that_did_not_finish_is_a_mismatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        conformance, "server_records", lambda server: ({}, f"{server} 0.0")
    )
    mismatches, where = check("uvicorn")
    assert where == "uvicorn 0.0"
    assert len(mismatches) == len(CLAIMS)
    assert all(isinstance(m, Mismatch) for m in mismatches)
    assert {m.does for m in mismatches} == {"no record (the probe did not finish)"}


def test_a_profile_that_loses_bytes_of_a_large_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deliberately wrong: uvicorn would keep only the first 8192 bytes of each
    # message.
    right = profiles.body_messages

    def body_messages(case: Case) -> list[Message]:
        return [{**m, "body": m["body"][:8192]} for m in right(case)]

    monkeypatch.setattr(profiles, "body_messages", body_messages)
    mismatches, where = check("uvicorn")
    assert [str(m) for m in mismatches] == [
        f"profile 'uvicorn', claim 'a {LARGE}-byte body in one write comes in "
        f"http.request messages of at most 8192 bytes': the profile says True, "
        f"{where} does False",
        f"profile 'uvicorn', claim 'a {LARGE}-byte body in one write: its bytes "
        f"arrive whole': the profile says 8192, {where} does {LARGE}",
    ]
