"""Every corpus entry replays: a strict xfail where it is known to fail, a pass elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asgifuzz._corpus.entries import (
    load_entry,
    parse_version,
    starlette_version,
)
from asgifuzz._errors import CaseFormatError
from asgifuzz._oracles.verdict import judge
from asgifuzz.models import Case, case_to_data

CORPUS = Path(__file__).parents[2] / "corpus"
VERSION = starlette_version()


def _params(directory: Path = CORPUS) -> list[Any]:
    """One param per entry and backend; an entry that cannot be loaded (or an
    empty corpus) is a param too, whose test fails with the loader's message."""
    params: list[Any] = []
    for path in sorted(directory.glob("*.json")):
        try:
            entry = load_entry(path)
        except CaseFormatError as exc:
            params.append(pytest.param(exc, "-", id=f"{path.stem}-unloadable"))
            continue
        for backend in entry.backends:
            marks = []
            if entry.affects(VERSION):
                marks.append(
                    pytest.mark.xfail(
                        strict=True,
                        reason=f"{entry.key} ({entry.upstream or 'no upstream link yet'}) "
                        f"affects Starlette {entry.describe_range()}",
                    )
                )
            params.append(
                pytest.param(
                    entry, backend, id=f"{entry.path.stem}-{backend}", marks=marks
                )
            )
    if not params:
        missing = CaseFormatError(f"{directory}: no corpus entries (*.json) to replay")
        params.append(pytest.param(missing, "-", id="no-entries"))
    return params


@pytest.mark.parametrize(("entry", "backend"), _params())
def test_corpus_entry(entry: object, backend: str) -> None:
    from asgifuzz._corpus.entries import Entry

    if isinstance(entry, CaseFormatError):
        pytest.fail(str(entry), pytrace=False)
    assert isinstance(entry, Entry)
    verdict = judge(entry.case, (backend,))
    keys = [v.key for v in verdict.violations.get(backend, [])]
    assert entry.key not in keys, "\n".join(
        v.message for v in verdict.violations[backend] if v.key == entry.key
    )


def test_an_entry_that_cannot_be_loaded_fails_the_suite(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_entry_data()))
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe garbage")
    params = _params(tmp_path)
    assert [p.id for p in params] == ["bad-unloadable", "good-asyncio"]
    assert not params[0].marks  # not an xfail: it fails outright
    with pytest.raises(pytest.fail.Exception, match=r"bad\.json.*not UTF-8 JSON"):
        test_corpus_entry(*params[0].values)


def test_an_empty_corpus_fails_rather_than_skips(tmp_path: Path) -> None:
    (param,) = _params(tmp_path)
    with pytest.raises(pytest.fail.Exception, match="no corpus entries"):
        test_corpus_entry(*param.values)


def test_parse_version() -> None:
    assert parse_version("0.32.0.post1") == (0, 32, 0)
    assert parse_version("1.10.0") > parse_version("1.9.0")
    with pytest.raises(ValueError, match="is not a release number"):
        parse_version("latest")


def _entry_data() -> dict[str, object]:
    return {
        "format": 1,
        "key": "I1:RuntimeError",
        "title": "t",
        "status": "known-upstream",
        "upstream": "https://example.invalid/1",
        "affected": [["0.28.0", "0.38.2"]],
        "backends": ["asyncio"],
        "case": case_to_data(Case()),
    }


def test_entry_affects_its_range(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps(_entry_data()))
    entry = load_entry(path)
    assert entry.affects("0.28.0")
    assert entry.affects("0.38.2")
    assert not entry.affects("0.38.3")
    assert not entry.affects("0.27.0")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": "I99"}, "key"),
        ({"key": "__import__('os')"}, "key"),
        ({"status": "maybe"}, "status"),
        ({"affected": [["0.28"]]}, "affected"),
        ({"affected": [["0.28.0", "latest"]]}, "affected"),
        ({"backends": ["curio"]}, "backends"),
        ({"module": "os"}, "$"),
        ({"format": 2}, "format"),
        (
            {"case": {"format": 1, "stack": {"layers": [{"kind": "mypkg:Evil"}]}}},
            "stack.layers[0].kind",
        ),
    ],
)
def test_hostile_entries_are_refused(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**_entry_data(), **change}))
    with pytest.raises(
        CaseFormatError, match=rf"bad\.json.*'{__import__('re').escape(field)}'"
    ):
        load_entry(path)


@pytest.mark.parametrize("text", ["", "{", "[]", "\x00\x01", '{"format": 1'])
def test_truncated_or_garbage_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "junk.json"
    path.write_text(text)
    with pytest.raises(CaseFormatError, match=r"junk\.json"):
        load_entry(path)
