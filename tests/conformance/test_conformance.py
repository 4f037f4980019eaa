"""The server profiles against the real servers: every claim the driver relies
on, measured with the probe app on real uvicorn and hypercorn processes."""

from __future__ import annotations

import pytest

from asgifuzz._confirm import conformance
from asgifuzz._confirm.conformance import CLAIMS, Mismatch, check, main
from asgifuzz._confirm.serve import SERVERS
from asgifuzz._driver import server as profiles

pytest.importorskip("uvicorn", reason="the servers extra is not installed")
pytest.importorskip("hypercorn", reason="the servers extra is not installed")


@pytest.mark.parametrize("server", SERVERS)
def test_the_profile_conforms_to_the_real_server(server: str) -> None:
    mismatches, where = check(server)
    assert where.startswith(f"{server} ")
    assert not mismatches, "\n".join(map(str, mismatches))


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
