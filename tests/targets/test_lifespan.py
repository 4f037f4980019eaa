"""A middleware with a planted bug in its lifespan branch (it reports a failed
startup as complete) is found by the fuzz loop over lifespan sessions within
60 s; its fixed version passes. The loop is driven through
`lifespan_scope_cases`, the entry a ``--scope lifespan`` option routes to.

Slow: two fuzz runs (about 45 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asgifuzz._campaign.loop import fuzz
from asgifuzz.strategies._lifespan import lifespan_scope_cases

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_a_startup_failure_reported_as_complete_is_found() -> None:
    report = fuzz(
        max_time=30,
        strategy=lifespan_scope_cases(middleware=["lifespan_code:StartupReporter"]),
    )
    found = {f.key: f for f in report.findings}
    lifespan = [k for k in found if k.startswith("L")]
    assert lifespan, sorted(found)
    finding = found[lifespan[0]]
    assert finding.first_seen_s < 60
    assert "L2:complete" in finding.keys, finding.keys
    kinds = [la.kind for la in finding.case.stack.layers]
    assert "user.StartupReporter" in kinds
    assert finding.case.lifespan is not None
    assert finding.case.lifespan.startup in ("fail", "raise")


def test_the_fixed_version_passes() -> None:
    report = fuzz(
        max_time=15,
        strategy=lifespan_scope_cases(
            middleware=["lifespan_code:StartupReporterFixed"]
        ),
    )
    assert report.cases > 50
    assert not [f.key for f in report.findings if f.key.startswith("L")]
