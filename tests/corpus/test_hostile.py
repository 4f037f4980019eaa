"""Hostile corpus files: each gets one clear error, exit status 2, in bounded time.

Every file below is refused by the one loader every command uses, with a
message that names the file, the field and the limit; ``replay``, ``repro``,
``corpus list`` and ``corpus merge`` print it as one ``asgifuzz: error:`` line
and exit 2; nothing is written in the corpus directory; and nothing blocks (a
FIFO is refused before it is opened; SIGALRM turns a hang into a failure).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from asgifuzz._cli.main import main
from asgifuzz._corpus.entries import load_corpus, load_entry
from asgifuzz._corpus.replay import load_target
from asgifuzz._errors import CaseFormatError
from asgifuzz.models import Case, case_to_data

#: A bound on a hang, not a timing benchmark.
BOUND_S = 10.0


def _entry(**case: Any) -> dict[str, Any]:
    data = case_to_data(Case())
    for path, value in case.items():
        *outer, last = path.split("__")
        where = data
        for name in outer:
            where = where[name]
        where[last] = value
    return {
        "format": 1,
        "key": "I3",
        "title": "t",
        "status": "new",
        "affected": [["1.0.0", "1.0.0"]],
        "backends": ["asyncio"],
        "case": data,
    }


def _json(name: str, **case: Any) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_text(json.dumps(_entry(**case)))
        return path

    return make


def _raw(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content)
        return path

    return make


def _huge(directory: Path) -> Path:
    path = directory / "huge.json"
    text = json.dumps(_entry())
    path.write_text(text[:-1] + " " * (2 << 20) + "}")
    return path


def _fifo(directory: Path) -> Path:
    path = directory / "fifo.json"
    os.mkfifo(path)  # opened for reading, it would block until a writer came
    return path


def _device(directory: Path) -> Path:
    path = directory / "zero.json"
    path.symlink_to("/dev/zero")  # reads forever
    return path


def _outside(directory: Path) -> Path:
    outside = directory.parent / "outside.json"
    outside.write_text(json.dumps(_entry()))
    path = directory / "link.json"
    path.symlink_to(outside)
    return path


def _layer(options: object) -> list[dict[str, object]]:
    return [{"kind": "starlette.gzip", "pauses": [0, 0], "options": options}]


HOSTILE: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "huge file": (_huge, ("the file is", "at most 1048576 bytes")),
    "deep nesting": (
        _raw("deep.json", b"[" * 100_000 + b"]" * 100_000),
        ("field '$'", "deeper than 20"),
    ),
    "5000-digit integer": (
        _raw(
            "digits.json",
            json.dumps(_entry()).replace('"seed": 0', '"seed": ' + "9" * 5000).encode(),
        ),
        ("field 'case.seed'", "5000 digits", "at most 20"),
    ),
    "100k body segments": (
        _json("segments.json", request__body=[""] * 100_000),
        ("field 'request.body'", "100000 items", "at most 10000 segments"),
    ),
    "10k layers": (
        _json("layers.json", stack__layers=[{"kind": "bhm.passthrough"}] * 10_000),
        ("field 'stack.layers'", "10000 items", "at most 64 layers"),
    ),
    "1 MB header value": (
        _json("header.json", request__headers=[["x-big", "a" * 1_000_000]]),
        ("field 'request.headers[0].value'", "at most 8192 characters"),
    ),
    "FIFO": (_fifo, ("a FIFO", "not a regular file")),
    "/dev/zero via a symlink": (_device, ("a character device", "regular file")),
    "symlink out of the corpus": (_outside, ("outside its corpus directory",)),
    "binary garbage": (
        _raw("garbage.json", b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01{}[]" * 64),
        ("not UTF-8 JSON", "byte 0"),
    ),
    "wrong-typed layer option": (
        _json("wrongtype.json", stack__layers=_layer({"minimum_size": "abc"})),
        (
            "field 'stack.layers[0].options.minimum_size'",
            "must be an int in [0, 1048576]",
            "GZipMiddleware(minimum_size=...)",
        ),
    ),
    "unknown layer option": (
        _json("unknown.json", stack__layers=_layer({"compresslevel": 9})),
        (
            "field 'stack.layers[0].options'",
            "unknown options ['compresslevel']",
            "takes only ['minimum_size']",
        ),
    ),
    "bool for an int option": (
        _json("bool.json", stack__layers=_layer({"minimum_size": True})),
        ("options.minimum_size'", "[0, 1048576]"),
    ),
    "option on a layer that takes none": (
        _json(
            "none.json",
            stack__layers=[{"kind": "bhm.passthrough", "options": {"x": 1}}],
        ),
        ("field 'stack.layers[0].options'", "takes no options"),
    ),
    "trusted host wildcard inside": (
        _json(
            "wildcard.json",
            stack__layers=[
                {"kind": "starlette.trusted_host", "options": {"host": "a*b.com"}}
            ],
        ),
        ("options.host'", "'*' or one leading '*.'"),
    ),
    "a key twice": (
        _raw(
            "twice.json",
            json.dumps(_entry())
            .replace('"key": "I3"', '"key": "I3", "key": "I1"')
            .encode(),
        ),
        ("field '$'", "has the key 'key' twice"),
    ),
    "lone surrogate": (
        _raw(
            "surrogate.json",
            json.dumps(_entry()).replace('"title": "t"', '"title": "\\udc80"').encode(),
        ),
        ("field 'title'", "lone surrogate"),
    ),
    "5000-digit release": (
        _raw(
            "release.json",
            json.dumps(_entry())
            .replace('"1.0.0", "1.0.0"', '"1.0", "' + "9" * 5000 + '"')
            .encode(),
        ),
        ("field 'affected'", "releases"),
    ),
}


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Turn a blocked open() or read() into a failure instead of a hung suite."""

    def hung(signum: int, frame: object) -> None:
        raise AssertionError(f"the loader blocked for {BOUND_S}s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, BOUND_S * 3)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _listing(directory: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (p.name, p.lstat().st_size, p.lstat().st_mtime_ns) for p in directory.iterdir()
    )


def _one_error_line(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err[:2000]
    assert err.startswith("asgifuzz: error: "), err[:2000]
    assert str(path) in err
    assert "Traceback" not in err
    return err


@pytest.mark.usefixtures("no_hang")
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, expected = HOSTILE[name]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = make(corpus)
    before = _listing(corpus)
    start = time.monotonic()

    for load in (load_target, load_entry):
        with pytest.raises(CaseFormatError) as caught:
            load(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: "), message[:2000]
        assert "\n" not in message
        assert len(message) < 1000, message[:2000]
        for part in expected:
            assert part in message, message
    with pytest.raises(CaseFormatError, match=path.name):
        load_corpus(corpus)

    assert main(["replay", str(path)]) == 2
    err = _one_error_line(capsys, path)
    assert all(part in err for part in expected), err
    assert main(["repro", str(path)]) == 2
    _one_error_line(capsys, path)
    assert main(["corpus", "list", str(corpus)]) == 2
    _one_error_line(capsys, path)
    into = tmp_path / "into"
    assert main(["corpus", "merge", str(corpus), "--into", str(into)]) == 2
    _one_error_line(capsys, path)

    assert time.monotonic() - start < BOUND_S
    assert _listing(corpus) == before
    assert not into.exists()


def test_the_shipped_corpus_loads() -> None:
    shipped = Path(__file__).parents[2] / "corpus"
    entries = load_corpus(shipped)
    assert len(entries) == len(list(shipped.glob("*.json"))) >= 17
    for entry in entries:
        assert load_target(entry.path).case == entry.case


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[" * 100_000, "'$'"),
        ('{"format": 1, "seed": ' + "1" * 5000 + "}", "'seed'"),
        (" " * (2 << 20), "'$'"),
    ],
    ids=["deep", "digits", "huge"],
)
def test_case_from_json_is_bounded_too(text: str, field: str) -> None:
    with pytest.raises(CaseFormatError, match=rf"^x\.json: field {re.escape(field)}"):
        Case.from_json(text, source="x.json")


def test_a_symlink_inside_the_corpus_is_read(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    real = tmp_path / "sub" / "real.json"
    real.write_text(json.dumps(_entry()))
    (tmp_path / "link.json").symlink_to(real)
    assert load_entry(tmp_path / "link.json").key == "I3"


def test_a_directory_named_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(CaseFormatError, match=r"dir\.json: the file is a directory"):
        load_corpus(tmp_path)
