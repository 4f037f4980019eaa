"""Sharing failures: database specs, and two campaigns sharing a real redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from asgifuzz._campaign.database import combined, from_spec
from asgifuzz._errors import UsageError


def test_specs(tmp_path: Path) -> None:
    assert from_spec("none") is None
    assert isinstance(from_spec(str(tmp_path)), DirectoryBasedExampleDatabase)
    assert isinstance(from_spec("github:me/repo"), GitHubArtifactDatabase)
    both = combined(str(tmp_path / "a"), str(tmp_path / "b"))
    assert isinstance(both, MultiplexedDatabase)
    assert isinstance(combined("none", str(tmp_path)), ReadOnlyDatabase)
    assert combined("none", None) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ftp://x", "unknown scheme"),
        ("github:onlyowner", "expected github:OWNER/REPO"),
        (__file__, "is a file"),
    ],
)
def test_bad_specs_name_the_option(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"--database {spec}: .*{message}"):
        from_spec(spec)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on loopback, started and stopped by the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "no redis-server binary on PATH; install one (Debian: apt-get install "
            "redis-server) to run the shared-database test"
        )
    redis = pytest.importorskip("redis", reason="pip install 'asgifuzz[redis]'")
    port = _free_port()
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(200):  # the server's start-up, not the fuzz path
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


def test_two_campaigns_share_failures_through_redis(
    redis_url: str, tmp_path: Path
) -> None:
    """A failure found by one campaign is the first example the other one tries."""
    tried: dict[str, list[int]] = {"a": [], "b": []}

    def campaign(name: str) -> None:
        local = str(tmp_path / name / ".hypothesis")
        shared = from_spec(redis_url)
        db = MultiplexedDatabase(from_spec(local), shared)  # type: ignore[arg-type]

        @settings(database=db, max_examples=1000, derandomize=False)
        @given(st.integers(0, 10**9))
        def property_of_both(n: int) -> None:
            tried[name].append(n)
            assert n % 50 != 37  # a failure to search for

        try:
            with pytest.raises(AssertionError):
                property_of_both()
        finally:
            # Close the client's sockets here, not in some later test's GC
            # (an unclosed socket is a ResourceWarning, an error under -W error).
            shared.redis.close()  # type: ignore[union-attr]

    campaign("a")
    assert len(tried["a"]) > 1  # campaign a had to search for it
    campaign("b")
    first = tried["b"][0]
    assert first % 50 == 37  # campaign b replayed the failure a found first
