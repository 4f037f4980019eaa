"""The websocket profiles against the real servers: every websocket claim the
driver relies on, measured with the websocket probe and a wsproto client on
real uvicorn, hypercorn, daphne and granian processes; and each claim shown to
catch a deliberately wrong profile, naming the profile, the claim, what the
server does and its version."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from asgifuzz._confirm import conformance, ws_conformance
from asgifuzz._confirm.conformance import main
from asgifuzz._confirm.serve import SERVERS, missing
from asgifuzz._confirm.ws_conformance import WS_CLAIMS, check_websocket
from asgifuzz._confirm.ws_probe import Record
from asgifuzz._driver import ws_server

pytest.importorskip("wsproto", reason="the servers extra is not installed")

EVERY_SERVER = [
    pytest.param(s, marks=pytest.mark.skipif(bool(missing(s)), reason=missing(s)))
    for s in SERVERS
]
_MEASURED: dict[str, tuple[dict[str, Record], str]] = {}
_MEASURE = ws_conformance.ws_server_records


def _measured(server: str) -> tuple[dict[str, Record], str]:
    """The real server's records, measured once per test session."""
    if server not in _MEASURED:
        right = ws_conformance.ws_profile_records(server)
        for _ in range(3):  # a measurement that load decided is taken again
            seen, where = _MEASURED[server] = _MEASURE(server)
            if not ws_conformance.compare(server, right, seen, where):
                break
    return _MEASURED[server]


@pytest.mark.parametrize("server", EVERY_SERVER)
def test_the_websocket_profile_conforms_to_the_real_server(server: str) -> None:
    mismatches, where = check_websocket(server)
    assert where.startswith(f"{server} ")
    assert not mismatches, "\n".join(map(str, mismatches))


def _wrong(monkeypatch: pytest.MonkeyPatch, server: str, **fields: Any) -> None:
    """Deliberately wrong: ``server``'s profile with ``fields`` changed; the
    real server's records are the ones measured once."""
    profiles = dict(ws_server.WS_PROFILES)
    profiles[server] = dataclasses.replace(profiles[server], **fields)
    monkeypatch.setattr(ws_server, "WS_PROFILES", profiles)
    monkeypatch.setattr(
        ws_conformance, "ws_server_records", lambda s, **_: _measured(s)
    )


#: Each deliberately wrong field, and the claims that must catch it.
WRONG = [
    ("daphne", {"spec_version": "2.3"}, ["websocket scope['asgi']['spec_version']"]),
    (
        "daphne",
        {"extensions": ("websocket.http.response",)},
        [
            "websocket scope['extensions']",
            "a denial response where advertised, else a close (status, body)",
        ],
    ),
    (
        "daphne",
        {"close_reason": True},
        ["the close the client sees when the app closes with 4001 'app'"],
    ),
    (
        "daphne",
        {"unanswered_status": 500},
        ["the handshake's status when the app returns without answering it"],
    ),
    (
        "daphne",
        {"closed_error": "RuntimeError"},
        ["send() of a frame after the app closed"],
    ),
    (
        "granian",
        {"repeat": "never"},
        [
            "receive() twice after the app closed and the client answered",
            "receive() twice after the client dropped the connection (its code; "
            "does websocket.disconnect repeat?)",
            "receive() twice after the client closed with 4000 'bye'",
        ],
    ),
    (
        "granian",
        {"raised_status": 500},
        ["the handshake's status when the app raises before answering it"],
    ),
    (
        "granian",
        {"return_close": 1000, "raise_close": 1011},
        [
            "the close the client sees when the app returns after accepting",
            "the close the client sees when the app raises after accepting",
        ],
    ),
    (
        "granian",
        {"subprotocol_error": "Exception"},
        ["websocket.accept with a subprotocol the client did not offer"],
    ),
    (
        "granian",
        {"client_reason": True, "closed_code": None},
        [
            "receive() twice after the app closed and the client answered",
            "receive() twice after the client closed with 4000 'bye'",
        ],
    ),
    (
        "uvicorn",
        {"gone_error": None},
        [
            "send() after the client dropped the connection",
            "send() after the client closed",
        ],
    ),
    (
        "uvicorn",
        {"drop_code": 1006, "repeat": "same"},
        [
            "receive() twice after the app closed and the client answered",
            "receive() twice after the client dropped the connection (its code; "
            "does websocket.disconnect repeat?)",
            "receive() twice after the client closed with 4000 'bye'",
        ],
    ),
    (
        "hypercorn",
        {"client_code": True},
        ["receive() twice after the client closed with 4000 'bye'"],
    ),
]


@pytest.mark.parametrize(("server", "fields", "claims"), WRONG)
def test_a_wrong_websocket_claim_is_caught(
    monkeypatch: pytest.MonkeyPatch,
    server: str,
    fields: dict[str, Any],
    claims: list[str],
) -> None:
    if missing(server):
        pytest.skip(missing(server))
    _wrong(monkeypatch, server, **fields)
    mismatches, where = check_websocket(server)
    assert [m.claim for m in mismatches] == claims
    assert all(m.profile == server and m.server == where for m in mismatches)
    assert where.startswith(f"{server} ")
    assert all(m.says != m.does for m in mismatches)


@pytest.mark.skipif(bool(missing("daphne")), reason=missing("daphne"))
def test_the_mismatch_names_the_profile_the_claim_and_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _wrong(monkeypatch, "daphne", repeat="same")
    mismatches, where = check_websocket("daphne")
    assert where.startswith("daphne 4.")
    assert str(mismatches[0]) == (
        "profile 'daphne', claim 'receive() twice after the app closed and the "
        "client answered': the profile says [['websocket.disconnect', 4001, None], "
        "['websocket.disconnect', 4001, None]], "
        f"{where} does [['websocket.disconnect', 4001, None], 'blocks']"
    )


def test_another_profile_is_told_apart() -> None:
    mismatches, _ = check_websocket("hypercorn", profile="granian")
    claims = {m.claim for m in mismatches}
    assert "websocket scope['extensions']" in claims
    assert "the handshake's status when the app returns without answering it" in (
        claims
    )
    assert claims <= {c for c, _, _ in WS_CLAIMS}
    assert all(m.profile == "granian" for m in mismatches)


def test_a_websocket_probe_that_did_not_finish_is_a_mismatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        ws_conformance, "ws_server_records", lambda server: ({}, f"{server} 0.0")
    )
    mismatches, where = check_websocket("uvicorn")
    assert where == "uvicorn 0.0"
    assert len(mismatches) == len(WS_CLAIMS)
    assert {m.does for m in mismatches} == {"no record (the probe did not finish)"}


def test_the_script_reports_a_websocket_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(conformance, "check", lambda server: ([], f"{server} 9"))
    _wrong(monkeypatch, "hypercorn", gone_error="ClientDisconnected")
    assert main(["hypercorn"]) == 1
    out = capsys.readouterr().out
    assert "profile 'hypercorn' on hypercorn 9: 2 mismatches" in out
    assert "MISMATCH profile 'hypercorn', claim 'send() after the client closed'" in (
        out
    )
