"""Hypothesis example databases from one-line specs, for sharing between machines.

Specs (the ``--database`` / ``--shared-database`` options and the
``ASGIFUZZ_DATABASE`` / ``ASGIFUZZ_SHARED_DATABASE`` environment variables):

- a directory path: ``DirectoryBasedExampleDatabase`` (the default is
  ``.hypothesis/examples``, Hypothesis' own);
- ``redis://host:port/db``: ``hypothesis.extra.redis.RedisExampleDatabase``, a team
  database that every worker reads and writes live (needs ``asgifuzz[redis]``);
- ``github:owner/repo[/artifact]``: ``GitHubArtifactDatabase``, the database a CI
  workflow uploaded as an artifact (read-only by nature);
- ``none``: no database.

A shared database is wrapped so that it is read but never written:
``MultiplexedDatabase(local, ReadOnlyDatabase(shared))``, Hypothesis' own recipe.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from asgifuzz._errors import UsageError

DEFAULT = ".hypothesis/examples"


def from_spec(spec: str, *, option: str = "--database") -> ExampleDatabase | None:
    """The database a spec names; `UsageError` names the option, value and fix."""
    if spec == "none":
        return None
    if spec.startswith("redis://"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError:
            raise UsageError(
                f"{option} {spec}: the redis client is not installed; "
                "install it with: pip install 'asgifuzz[redis]'"
            ) from None
        return RedisExampleDatabase(redis.Redis.from_url(spec))
    if spec.startswith("github:"):
        parts = spec.removeprefix("github:").split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(
                f"{option} {spec}: expected github:OWNER/REPO or github:OWNER/REPO/ARTIFACT"
            )
        artifact = parts[2] if len(parts) == 3 else "hypothesis-example-db"
        return GitHubArtifactDatabase(parts[0], parts[1], artifact_name=artifact)
    if "://" in spec:
        raise UsageError(
            f"{option} {spec}: unknown scheme; use a directory, redis://HOST:PORT/DB, "
            "github:OWNER/REPO or none"
        )
    path = Path(spec)
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"{option} {spec}: is a file; name a directory for the database"
        )
    return DirectoryBasedExampleDatabase(str(path))


def combined(local: str, shared: str | None) -> ExampleDatabase | None:
    """The local database, plus a shared one that is read but not written."""
    mine = from_spec(local)
    if not shared:
        return mine
    theirs = from_spec(shared, option="--shared-database")
    if theirs is None:
        return mine
    if mine is None:
        return ReadOnlyDatabase(theirs)
    return MultiplexedDatabase(mine, ReadOnlyDatabase(theirs))
