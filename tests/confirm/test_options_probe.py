"""The command's options and the probe app's rarer paths, without a real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from asgifuzz._cli import confirm as command
from asgifuzz._cli.main import main
from asgifuzz._confirm import conformance
from asgifuzz._confirm.confirm import Confirmation
from asgifuzz._confirm.conformance import profile_records
from asgifuzz._confirm.probe import ProbeApp, Record
from asgifuzz._confirm.serve import SERVERS
from asgifuzz._driver.server import FakeServer, make_scope
from asgifuzz._driver.vtime import VirtualTimeLoop
from asgifuzz.models import Case, Client, Request, Server
from asgifuzz.models._record import Recorder

CORPUS = Path(__file__).parents[2] / "corpus"


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--tries", "0"], "argument --tries: '0': need a number of tries, 1 or more"),
        (["--tries", "x"], "argument --tries: 'x': need a number of tries, 1 or more"),
        (
            ["--timeout", "-1"],
            "argument --timeout: '-1': need a number of seconds, above 0",
        ),
    ],
)
def test_bad_numbers_are_bad_usage(
    option: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = str(CORPUS / "is-disconnected-drops-body-hang.json")
    with pytest.raises(SystemExit) as stopped:
        main(["confirm", entry, *option])
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_a_finding_has_no_range_and_a_k_of_n_cell(tmp_path: Path) -> None:
    finding = tmp_path / "finding.json"
    case = json.loads(Case().to_json())
    finding.write_text(json.dumps({"case": case, "key": "I4:response"}))
    assert command._in_range(finding, "1.10.0") == "?"
    hit = Confirmation("uvicorn", "confirmed", "", hits=3, tries=5)
    assert command._recorded(hit).cell() == "confirmed (3 of 5)"
    missed = Confirmation("uvicorn", "not confirmed", "", tries=5)
    assert command._recorded(missed).cell() == "not confirmed"
    assert command._servers(None, "strict") == ["uvicorn"]
    assert command._servers(None, "daphne") == ["daphne"]
    assert command._servers(None, "hypercorn") == ["hypercorn"]


def _probe(case: Case) -> Record:
    records: list[Record] = []

    async def run() -> None:
        server = FakeServer(case, Recorder())
        await ProbeApp(records.append)(make_scope(case), server.receive, server.send)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(run())
    return records[0]


def test_the_probe_records_a_disconnect_instead_of_a_body() -> None:
    case = Case(
        request=Request("POST", "/body", body=(b"ab",)), client=Client("receive", 0)
    )
    assert _probe(case)["messages"] == [["http.disconnect", False]]


def test_the_strict_profile_raises_on_send_after_a_disconnect(tmp_path: Path) -> None:
    assert profile_records("strict")["/disconnect"]["send_after_disconnect"] == (
        "raises ClientDisconnected"
    )
    sink = tmp_path / "records.jsonl"
    case = Case(request=Request("GET", "/body"), server=Server("hypercorn"))
    records: list[Record] = []

    async def run() -> None:
        server = FakeServer(case, Recorder())
        await ProbeApp(sink)(make_scope(case), server.receive, server.send)
        records.extend(map(json.loads, sink.read_text().splitlines()))

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(run())
    scope = make_scope(case)
    assert records == [
        {
            "asgi": scope["asgi"],
            "extensions": sorted(scope["extensions"]),
            "messages": [[0, False]],
            "path": "/body",
        }
    ]


def test_a_server_that_is_not_installed_is_left_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def gone(server: str) -> str:
        return f"{server} is not installed" if server == "granian" else ""

    monkeypatch.setattr(command, "missing", gone)
    monkeypatch.setattr(conformance, "missing", lambda server: f"no {server}")
    leak = str(CORPUS / "bhm-body-stream-not-closed-trio.json")  # judged offline
    assert main(["confirm", leak, "--server", "all"]) == 0
    out = capsys.readouterr().out
    assert "  granian: not run: granian is not installed\n" in out
    assert "  daphne: not confirmable: " in out
    assert conformance.main(["all"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"profile {s!r}: skipped: no {s}" for s in SERVERS
    ]
