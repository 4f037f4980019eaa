"""Checks before the first case: every output can be written, the database can
be reached and written, the worker count fits the machine.

A campaign that learns after its budget that ``--json`` names a directory, or
that Redis is not there, has wasted the budget and lost its findings. Each
problem is one `UsageError` naming the option, the value and the fix.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from asgifuzz._campaign.campaign import FuzzConfig
from asgifuzz._errors import UsageError
from asgifuzz.strategies._independent import fresh_draws

#: Seconds to wait for a Redis server to answer (the one network wait of a
#: campaign's set-up, never on the fuzz path).
REDIS_TIMEOUT = 3.0


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _nearest_existing(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists():
            return parent
    return Path.cwd()  # pragma: no cover - a relative path always has "."


def _writable_dir(option: str, path: Path, *, what: str) -> None:
    """``path`` is a directory that exists and can be written, or can be made."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file; name a directory for {what}")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise UsageError(
            f"{option} {path}: {base} is a file, so the directory cannot be made; "
            "name a path under a directory"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {path}: {base} is not writable; name a directory you can "
            "write, or fix its permissions"
        )


def _writable_file(option: str, path: Path) -> None:
    """``path`` can be written: not a directory, under a writable directory."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; name a file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: is read-only; name a file you can write")
    _writable_dir(option, path.parent, what="the file")


def check_database(spec: str | None, option: str, *, write: bool) -> None:
    """The database ``spec`` names can be reached (and written, if ``write``)."""
    if spec is None or spec == "none" or spec.startswith("github:"):
        return
    if spec.startswith("redis://"):
        try:
            import redis  # the optional extra; `database.from_spec` says how to install
        except ImportError:
            return  # from_spec gives the error with the fix
        client = redis.Redis.from_url(
            spec, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            raise UsageError(
                f"{option} {spec}: cannot reach Redis ({type(exc).__name__}: {exc}); "
                "start the server or fix the URL, or run with --no-database"
            ) from None
        finally:
            client.close()
        return
    if "://" in spec:
        return  # from_spec names the unknown scheme
    path = Path(spec)
    if not write:
        return
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {spec}: the database directory is read-only; read it with "
            "--shared-database instead, or fix its permissions"
        )
    _writable_dir(option, path, what="the database")


def check(config: FuzzConfig, warn: list[str] | None = None) -> FuzzConfig:
    """The config, checked before the first case (`UsageError` on a problem).

    More workers than usable CPUs are capped to the CPUs, with a line in
    ``warn`` saying so: they would only share the CPUs and slow each other.
    """
    if config.corpus is not None:
        _writable_dir("--corpus", config.corpus, what="the corpus")
    for option, path in (
        ("--json", config.json),
        ("--junit", config.junit),
        ("--report", config.report),
    ):
        if path is not None:
            _writable_file(option, path)
    check_database(config.database, "--database", write=True)
    fresh_draws()  # a bad ASGIFUZZ_DRAWS is refused before the first case
    targets = config.targets
    chosen = [n for n, _ in targets.scopes] if isinstance(targets.scopes, tuple) else []
    if targets.app and "lifespan" in chosen:
        raise UsageError(
            f"--scope {','.join(chosen)} with --app {targets.app}: a lifespan "
            "session runs asgifuzz's model app, and your app's own lifespan already "
            "runs around each of its http runs; drop lifespan from --scope (or fuzz "
            "your middleware alone with --middleware)"
        )
    if config.database is not None:
        check_database(config.shared_database, "--shared-database", write=False)
    cpus = usable_cpus()
    if config.workers > cpus:
        if warn is not None:
            warn.append(
                f"--workers {config.workers} is more than the {cpus} CPU(s) this "
                f"process may use; running {cpus} worker(s)"
            )
        config = replace(config, workers=cpus)
    return config
