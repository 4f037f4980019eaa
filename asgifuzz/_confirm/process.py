"""A real server in a child process: started, awaited and stopped by its pid.

`running` starts ``python -m asgifuzz._confirm.serve`` (with the given Python:
this one, or a release venv's), reads the port it bound, polls its ready path
until it answers, and always stops it: SIGTERM, then SIGKILL after `STOP_WAIT`
seconds. Every wait is bounded.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from asgifuzz._errors import AsgiFuzzError

#: Seconds a server may take to start and answer its ready path.
START_WAIT = 20.0
#: Seconds a server may take to stop after SIGTERM before it is killed.
STOP_WAIT = 5.0


class ServerStartError(AsgiFuzzError, RuntimeError):
    """A real server did not start (not installed, crashed, or too slow)."""


@dataclass
class Running:
    """A started server: its name, version, port, pid and log file, and the
    Starlette release it runs."""

    name: str
    version: str
    starlette: str
    port: int
    pid: int
    log: Path
    #: All the server wrote to standard error, once it has stopped.
    logged: str = ""

    def log_text(self) -> str:
        """What the server wrote to standard error so far."""
        return self.log.read_text(errors="replace")


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None  # started with stdout=PIPE
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return line.decode(errors="replace")
            byte = os.read(proc.stdout.fileno(), 1)
            if not byte:
                break
            line += byte
        return line.decode(errors="replace")
    finally:
        sel.close()


def _answers(port: int, deadline: float) -> bool:
    request = (
        b"GET /.asgifuzz/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(request)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass  # not listening yet, or reset while starting: poll again
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server by its pid: SIGTERM, then SIGKILL; always reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def running(
    server: str, what: list[str], *, python: str, env: dict[str, str] | None = None
) -> Iterator[Running]:
    """Serve ``what`` (``["--case", FILE]`` or ``["--probe", FILE]``) with ``server``."""
    with tempfile.TemporaryDirectory(prefix="asgifuzz-confirm-") as folder:
        log = Path(folder) / "server.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [python, "-m", "asgifuzz._confirm.serve", server, *what],
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        started: Running | None = None
        try:
            deadline = time.monotonic() + START_WAIT
            words = _read_line(proc, deadline).split()
            if len(words) != 5 or words[0] != "ready" or not words[1].isdigit():
                stop(proc)
                tail = " | ".join(log.read_text(errors="replace").splitlines()[-3:])
                raise ServerStartError(
                    f"{server} did not start with {python}: {tail or 'no output'}; "
                    f"install it (pip install 'asgifuzz[servers]') or leave it out"
                )
            started = Running(
                words[2], words[3], words[4], int(words[1]), proc.pid, log
            )
            if not _answers(started.port, deadline):
                raise ServerStartError(
                    f"{server} {started.version} did not answer on port "
                    f"{started.port} within {START_WAIT:g}s"
                )
            yield started
        finally:
            stop(proc)
            if started is not None:
                started.logged = log.read_text(errors="replace")
