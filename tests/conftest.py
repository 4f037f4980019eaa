"""Shared fixtures: Hypothesis profiles and the one backend fixture."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from asgifuzz._campaign.database import combined

pytest_plugins = ["pytester"]  # tests/test_plugin.py runs a user's test files

# Share failures between machines: ASGIFUZZ_DATABASE (default: the local directory)
# and ASGIFUZZ_SHARED_DATABASE (read, never written), e.g. redis://host:6379/0.
DATABASE = combined(
    os.environ.get("ASGIFUZZ_DATABASE", ".hypothesis/examples"),
    os.environ.get("ASGIFUZZ_SHARED_DATABASE"),
)

# Hypothesis auto-loads its own "ci" profile (database=None) when CI is set, so
# ours are registered and loaded explicitly.
settings.register_profile("dev", max_examples=60, deadline=None, database=DATABASE)
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    # derandomize implies no database: CI replays the same examples every run
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "nightly",
    max_examples=5000,
    deadline=None,
    database=DATABASE,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("ASGIFUZZ_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(params=["asyncio", "trio"], scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per event loop."""
    return str(request.param)
