"""The pytest plugin, as a user meets it: a test file of theirs, run by pytest."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent.parent

USER_TESTS = """
import asgifuzz
from hypothesis import settings
from user_code import Greedy, Stamp


@settings(max_examples=150, derandomize=True, database=None)
@asgifuzz.given_cases(middleware=[Greedy], builtin=False)
def test_greedy(case):
    asgifuzz.check(case)


@settings(max_examples=40, derandomize=True, database=None)
@asgifuzz.given_cases(middleware=[Stamp], builtin=False)
def test_stamp(case):
    asgifuzz.check(case)
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytester.makepyfile(test_user=USER_TESTS)
    (pytester.path / "user_code.py").write_text((TESTS / "user_code.py").read_text())
    # The user's folder, and this checkout's asgifuzz (the one under test, not
    # whichever one is installed).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(ROOT)]))
    return pytester.path


def test_failures_are_saved_and_the_summary_says_how_to_replay(
    pytester: pytest.Pytester, user_project: Path
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    # Both backends, through anyio's anyio_backend fixture.
    result.assert_outcomes(failed=2, passed=2)
    for line in (  # in an order that depends on anyio's version
        "*test_greedy?asyncio? FAILED*",
        "*test_stamp?asyncio? PASSED*",
        "*test_greedy?trio? FAILED*",
        "*test_stamp?trio? PASSED*",
    ):
        result.stdout.fnmatch_lines([line])
    result.stdout.fnmatch_lines(
        [
            "*= asgifuzz =*",
            "*test_greedy*: new corpus entry corpus/new/i*.json, yours",
            "*replay: asgifuzz replay corpus/new/i*.json --trace --middleware "
            "Greedy=user_code:Greedy",
        ]
    )
    # On Starlette 1.x the app reads b"" (I3); older releases hang instead (I4).
    # Starlette's failures seen on the way are saved too, with a swapped case.
    (data,) = [
        d
        for d in (json.loads(p.read_text()) for p in corpus_files(user_project))
        if "swapped" not in d
    ]
    assert data["targets"] == {"middleware": {"Greedy": "user_code:Greedy"}}
    assert data["case"]["stack"]["layers"][0]["kind"] == "user.Greedy"

    # The printed command replays it.
    line = next(ln for ln in result.outlines if "replay: asgifuzz replay" in ln)
    argv = shlex.split(line.split("replay: asgifuzz ", 1)[1])
    replay = pytester.run(sys.executable, "-m", "asgifuzz", *argv)
    assert replay.ret == 1
    replay.stdout.fnmatch_lines([f"*: still failing ({data['key']})*"])


def corpus_files(project: Path) -> list[Path]:
    return sorted((project / "corpus" / "new").glob("i*.json"))


UPSTREAM_TESTS = """
import asgifuzz
from hypothesis import settings, strategies as st
from asgifuzz.models import Client, Endpoint, Server
from attribution_code import PassThrough


@settings(max_examples=5, derandomize=True, database=None, deadline=None)
@asgifuzz.given_cases(
    middleware=[PassThrough],
    builtin=False,
    endpoint=st.just(Endpoint(kind="poll_disconnect")),
    client=st.just(Client(disconnect="checkpoints", at=3)),
    server=st.just(Server(name="uvicorn")),
)
def test_pass_through(case):
    asgifuzz.check(case)
"""


def test_starlettes_failures_pass_and_are_listed_upstream_with_a_reproducer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Starlette 1.10.0 a BaseHTTPMiddleware hides the disconnect from an
    # endpoint polling is_disconnected() (I9:endpoint): a pass-through of the
    # user's shows it, and so does Starlette's own in its place.
    pytester.makepyfile(test_user=UPSTREAM_TESTS)
    code = TESTS.parent / "campaign" / "attribution_code.py"
    (pytester.path / "attribution_code.py").write_text(code.read_text())
    paths = [str(pytester.path), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "asyncio")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= asgifuzz =*",
            "*test_pass_through?asyncio?: I9:endpoint, upstream (Starlette), in * "
            "case(s) that passed the check*",
            "*saved: corpus/new/i9-endpoint-*.json; reproducer (Starlette only): "
            "asgifuzz repro corpus/new/i9-endpoint-*.json",
        ]
    )
    (entry,) = corpus_files(pytester.path)
    assert "bhm.passthrough" in entry.read_text()
    made = pytester.run(sys.executable, "-m", "asgifuzz", "repro", str(entry))
    assert made.ret == 0
    script = pytester.path / "repro.py"
    script.write_text("\n".join(made.outlines) + "\n")
    assert pytester.run(sys.executable, str(script)).ret == 1


def test_a_corpus_directory_option(
    pytester: pytest.Pytester, user_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-k",
        "greedy and asyncio",
        "--asgifuzz-corpus",
        str(out),
    )
    result.assert_outcomes(failed=1)
    assert list(out.glob("i*.json"))


def test_given_cases_needs_a_case_argument() -> None:
    import asgifuzz
    from asgifuzz._errors import UsageError

    with pytest.raises(UsageError, match="takes no 'case' argument"):

        @asgifuzz.given_cases()
        def test_nothing() -> None: ...
