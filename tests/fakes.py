"""Fakes shared by tests in several folders (tests/ is on sys.path: conftest.py)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from asgifuzz._oracles import verdict as _verdict
from asgifuzz._oracles.verdict import Verdict
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case


def judge_with(fail: bool):  # type: ignore[no-untyped-def]
    """A `judge` that makes up an I4 failure for every case with a body (or none)."""
    real = _verdict.judge

    def judge(case: Case, backends: tuple[str, ...] = ("asyncio", "trio")) -> Verdict:
        verdict = real(case, backends)
        for b in backends:
            verdict.violations[b] = (
                [Violation("I4", "made up for the test", "app")]
                if fail and case.request.body
                else []
            )
        verdict.violations.pop("both", None)
        return verdict

    return judge


#: The websocket, lifespan and HTTP-extension models (issue 15) are checked on
#: anyio 4 and Starlette 1.x only; on the compatibility environment (Starlette
#: 0.27, anyio 3) their tests are skipped, and that gap is said in the README.
NEW_SCOPES_UNCHECKED = pytest.mark.skipif(
    int(version("anyio").split(".")[0]) < 4,
    reason="websocket, lifespan and extension models are not checked on anyio 3 "
    "/ Starlette 0.27 yet (issue 15)",
)
