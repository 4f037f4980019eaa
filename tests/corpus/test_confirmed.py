"""The confirmation status of corpus entries on real servers: the ``confirmed``
field (validated, recorded by ``asgifuzz confirm --record``, shown by ``replay``
and ``corpus list``) and the reports written from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from asgifuzz._cli.main import main
from asgifuzz._corpus.confirmed import (
    CONFIRMED,
    NOT_CONFIRMABLE,
    SERVER_NAMES,
    Confirmed,
    summary,
)
from asgifuzz._corpus.entries import entry_path, load_corpus, load_entry
from asgifuzz._corpus.reports import (
    SERVERS_REPORT,
    record,
    refresh_reports,
    servers_table,
)
from asgifuzz._errors import CaseFormatError
from asgifuzz.models import Case, case_to_data

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "corpus"
#: An entry no client can confirm (I7): `confirm` judges it without a server.
LEAK = "bhm-body-stream-not-closed-trio"


def _entry(confirmed: object) -> dict[str, Any]:
    return {
        "format": 1,
        "key": "I3",
        "title": "t",
        "status": "new",
        "affected": [["1.0.0", "1.0.0"]],
        "case": case_to_data(Case()),
        "confirmed": confirmed,
    }


def _copy(name: str, into: Path) -> Path:
    """A corpus entry copied into ``into``, without the verdicts it records."""
    data = json.loads((CORPUS / f"{name}.json").read_text())
    data.pop("confirmed", None)
    path = into / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


GOOD = Confirmed(CONFIRMED, "0.54.0", "1.10.0", 4, 5, "hung").to_data()


@pytest.mark.parametrize(
    ("confirmed", "says"),
    [
        ([], "field 'confirmed' is []; must map server names"),
        ({"nginx": GOOD}, "names server 'nginx'; must be one of"),
        ({"uvicorn": {"status": "confirmed"}}, "field 'confirmed.uvicorn' is"),
        ({"uvicorn": {**GOOD, "status": "yes"}}, "'confirmed.uvicorn.status' is 'yes'"),
        ({"uvicorn": {**GOOD, "hits": 6}}, "has hits 6 of tries 5"),
        ({"uvicorn": {**GOOD, "tries": True}}, "must be whole numbers"),
        ({"uvicorn": {**GOOD, "version": 1}}, "'confirmed.uvicorn.version' is 1"),
    ],
)
def test_a_bad_confirmed_field_is_named(
    confirmed: object, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(_entry(confirmed)))
    with pytest.raises(CaseFormatError, match=f"^{path}: .*") as caught:
        load_entry(path)
    assert says in str(caught.value)
    assert main(["replay", str(path)]) == 2
    assert says in capsys.readouterr().err


def test_recording_keeps_the_case_its_hash_and_the_other_servers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(_entry({"daphne": GOOD})))
    before = load_entry(path)
    verdict = Confirmed(NOT_CONFIRMABLE, detail="x" * 900)
    record(path, {"uvicorn": verdict})
    after = load_entry(path)
    assert case_to_data(after.case) == case_to_data(before.case)
    assert entry_path(tmp_path, "I3", after.case) == entry_path(
        tmp_path, "I3", before.case
    )
    assert sorted(after.confirmed) == ["daphne", "uvicorn"]
    assert after.confirmed["uvicorn"].detail == "x" * 500  # cut to its bound
    assert summary(after.confirmed) == (
        "uvicorn: not confirmable; daphne 0.54.0 (Starlette 1.10.0): confirmed (4 of 5)"
    )
    assert "confirm --record" in summary({})


def test_the_reports_are_written_from_the_entries(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "reports").mkdir(parents=True)
    for name in (LEAK, "is-disconnected-drops-body-hang"):
        _copy(name, corpus)
    report = corpus / "reports" / "X.md"
    report.write_text(
        "# X\n\n<!-- confirmed: is-disconnected-drops-body-hang gone -->\nold\n"
        "<!-- /confirmed -->\n\n<!-- confirmed: gone -->\n<!-- /confirmed -->\n"
    )
    record(corpus / f"{LEAK}.json", {"uvicorn": Confirmed(NOT_CONFIRMABLE)})
    hang = Confirmed(CONFIRMED, "0.18.0", "1.10.0", 1, 1, "hung")
    record(corpus / "is-disconnected-drops-body-hang.json", {"hypercorn": hang})
    changed = refresh_reports(corpus)
    assert sorted(p.name for p in changed) == sorted([SERVERS_REPORT, "X.md"])
    table = (corpus / "reports" / SERVERS_REPORT).read_text().splitlines()[4:]
    assert table == [
        "| entry | key | affected (corpus) 1.10.0 | uvicorn | hypercorn 0.18.0 |",
        "|---|---|---|---|---|",
        f"| `{LEAK}` | I7:asyncgen | yes | not confirmable | - |",
        "| `is-disconnected-drops-body-hang` | I4:response | yes | - | confirmed |",
    ]
    text = report.read_text()
    assert "old" not in text
    assert (
        "| `is-disconnected-drops-body-hang` | I4:response | yes | confirmed |" in text
    )
    assert "<!-- confirmed: gone -->\n(no such entry)\n<!-- /confirmed -->" in text
    assert refresh_reports(corpus) == []  # written once, then in step


def test_replay_and_corpus_list_show_the_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(LEAK, tmp_path)
    record(path, {"granian": Confirmed(NOT_CONFIRMABLE, "2.8.9", "1.10.0")})
    main(["replay", str(path), "--backend", "trio"])
    line = "  on real servers: granian 2.8.9 (Starlette 1.10.0): not confirmable\n"
    assert line in capsys.readouterr().out
    assert main(["corpus", "list", str(tmp_path)]) == 0
    assert line in capsys.readouterr().out


def test_confirm_records_into_the_entry_and_its_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(LEAK, tmp_path)
    # I7 leaves no trace on the wire: judged without starting a server.
    assert main(["confirm", str(path), "--server", "all", "--record"]) == 0
    assert f"wrote {tmp_path / 'reports' / SERVERS_REPORT}" in capsys.readouterr().out
    entry = load_entry(path)
    assert sorted(entry.confirmed) == sorted(SERVER_NAMES)
    assert {c.status for c in entry.confirmed.values()} == {NOT_CONFIRMABLE}
    bare = tmp_path / "case.json"
    bare.write_text(entry.case.to_json())
    argv = ["confirm", str(bare), "--key", "I7:asyncgen", "--record"]
    assert main(argv) == 2
    assert "is a bare case or a finding" in capsys.readouterr().err


def test_every_corpus_entry_has_a_measured_status_per_server() -> None:
    unrecorded = [
        f"{e.path.name} ({', '.join(s for s in SERVER_NAMES if s not in e.confirmed)})"
        for e in load_corpus(CORPUS)
        if set(e.confirmed) != set(SERVER_NAMES)
    ]
    assert not unrecorded, (
        f"entries without a verdict on every server: {unrecorded}; measure them: "
        "asgifuzz confirm corpus/NAME.json --server all --record"
    )


def test_the_reports_and_the_readme_are_in_step_with_the_entries(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    changed = refresh_reports(copy)
    assert not changed, (
        f"{[p.name for p in changed]} differ from what the entries' 'confirmed' "
        "fields say; run: asgifuzz confirm corpus/*.json --server all --record"
    )
    table = (CORPUS / "reports" / SERVERS_REPORT).read_text().split("\n\n", 2)[2]
    assert table in (ROOT / "README.md").read_text(), (
        "the README's table of the corpus on real servers is not "
        f"corpus/reports/{SERVERS_REPORT}'s: copy it over"
    )


def test_a_server_measured_at_two_versions_names_them_per_cell(tmp_path: Path) -> None:
    for name, version in ((LEAK, "0.53.0"), ("is-disconnected-drops-body-hang", "")):
        path = _copy(name, tmp_path)
        record(path, {"uvicorn": Confirmed(CONFIRMED, version or "0.54.0", "1.10.0")})
    lines = servers_table(load_corpus(tmp_path))
    assert lines[0] == "| entry | key | affected (corpus) 1.10.0 | uvicorn |"
    assert lines[2].endswith("| confirmed (0.53.0) |")
    assert lines[3].endswith("| confirmed (0.54.0) |")
