"""Released versions of a package, and cached virtual environments to replay in.

`releases` lists a package's final releases from the package index; `era_pins`
gives a Starlette release the anyio and trio of its era; `VenvCache` builds one
virtual environment per release (atomically: in a temporary folder, renamed into
place when complete) and replays a case there with ``python -m asgifuzz replay``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from asgifuzz._corpus.entries import parse_version, write_atomically
from asgifuzz._errors import AsgiFuzzError, UsageError

# On a release, the case fails (a corpus entry: with its own key), fails with other
# keys only ("other": the bisected bug is absent), passes, or gives no verdict.
ReplayStatus = Literal["fails", "other", "passes", "error"]
Completed = subprocess.CompletedProcess[str]
Run = Callable[[Sequence[str], Path | None], Completed]  # command, folder -> result
_MARKER = "asgifuzz-venv.json"
_COPY = "import shutil, sys, sysconfig; shutil.copytree(sys.argv[1], sysconfig.get_path('purelib') + '/asgifuzz', ignore=shutil.ignore_patterns('__pycache__'))"
_REQ_NAME = re.compile(r"[<>=!~\[; ]")  # what ends a requirement's name
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_FINAL = re.compile(r"^(\d+(?:\.\d+)*)(?:\.post(\d+))?$")
# Starlette eras, newest first: (first release, anyio, trio). From KNOWN_BUGS.md;
# trio 0.24.0 and 0.29.0 are the last trio releases before anyio 4.3.0 and 4.9.0
# (the others were verified in /work/venvs); 0.50-0.52 share the 1.x pins.
_ERAS = (
    ((0, 50), "4.12.1", "0.35.0"),
    ((0, 46), "4.9.0", "0.29.0"),
    ((0, 39), "4.7.0", "0.28.0"),
    ((0, 38), "4.4.0", "0.26.2"),
    ((0, 31), "4.3.0", "0.24.0"),
    ((0, 15), "3.7.1", "0.22.2"),
)
_COMMON = ("hypothesis>=6.100", "itsdangerous>=2.0")  # asgifuzz's own floors


class VenvBuildError(AsgiFuzzError, RuntimeError):
    """A virtual environment for one release could not be built."""


class ReplayError(AsgiFuzzError, RuntimeError):
    """A replay ended without a verdict (bad input for that release, a crash)."""


def to_stderr(line: str) -> None:
    """The default progress log of bisect and matrix: one line on standard error."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _run_command(cmd: Sequence[str], cwd: Path | None) -> Completed:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # not the venv's
        env.pop(name, None)
    try:
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", "timed out after 1800s")


def output_tail(proc: Completed, lines: int = 5) -> str:
    """The last non-blank lines a command printed, on one line (for error messages)."""
    text = [s for s in (proc.stderr or proc.stdout or "").splitlines() if s.strip()]
    return " | ".join(text[-lines:]) or "no output"


def _pip_index_versions(package: str) -> str:
    cmd = [sys.executable, "-m", "pip", "index", "versions", package]
    proc = _run_command(cmd, None)
    if proc.returncode != 0:
        raise UsageError(
            f"pip found no releases of {package!r} ({output_tail(proc, 1)}); check the "
            "name and that the package index is reachable"
        )
    return proc.stdout


def releases(package: str, *, fetch: Callable[[str], str] | None = None) -> list[str]:
    """The final releases of ``package`` on the index, oldest first.

       Pre-releases, dev and local versions are left out. A post-release replaces
       its base release (``0.32.0.post1`` stands for ``0.32.0``: the same code,
       re-uploaded), so each release number appears once.
    ``fetch`` returns the output of ``pip index versions PACKAGE`` (for tests).
    """
    if not _NAME.match(package):
        raise UsageError(f"{package!r} is not a package name like 'starlette'")
    text = (fetch or _pip_index_versions)(package)
    match = re.search(r"^Available versions:(.*)$", text, re.MULTILINE)
    if match is None:
        raise UsageError(f"found no releases of {package!r}; check the name")
    best: dict[tuple[int, ...], tuple[int, str]] = {}
    for version in (v.strip() for v in match.group(1).split(",")):
        m = _FINAL.match(version)
        if m is not None:
            base = tuple(int(p) for p in m.group(1).split("."))
            post = int(m.group(2) or -1)
            if post > best.get(base, (-2, ""))[0]:
                best[base] = (post, version)
    return [best[k][1] for k in sorted(best)]


def era_pins(package: str, version: str) -> list[str]:
    """Requirements to install next to ``package==version``.

    For Starlette: the anyio and trio of the release's era (the versions it was
    verified with), ``typing_extensions`` for 0.35.0, plus what asgifuzz needs
    (Hypothesis, itsdangerous). Other packages get only asgifuzz's needs.
    """
    if package.lower() != "starlette":
        return list(_COMMON)
    v = parse_version(version)
    for first, anyio, trio in _ERAS:
        if v >= first:
            extra = ["typing_extensions"] if v[:3] == (0, 35, 0) else []
            return [f"anyio=={anyio}", f"trio=={trio}", *_COMMON, *extra]
    raise UsageError(
        f"Starlette {version} is older than 0.15.0, the first release on anyio, "
        "which asgifuzz needs; bisect from 0.15.0 or later"
    )


def _source_root() -> Path | None:
    """The project root when asgifuzz runs from a checkout (editable or not)."""
    root = Path(__file__).resolve().parents[2]  # asgifuzz/_releases/venvs.py
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "asgifuzz"' in pyproject.read_text():
        return root
    return None


def asgifuzz_source() -> str:
    """What a release venv gets as asgifuzz: this checkout, or this package."""
    return str(_source_root() or Path(__file__).resolve().parents[1])


def venv_python(venv: Path) -> Path:
    """The ``python`` of a virtual environment."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


class VenvCache:
    """One virtual environment per (package, release, Python), built on demand.

    Args:
        root: the folder holding the venvs; default ``$ASGIFUZZ_CACHE``, else
            ``~/.cache/asgifuzz/venvs``.
        log: receives one progress line per step; default: standard error.
        run: runs a command (in a folder) and returns its completed process.
        installer: ``"uv"``, ``"pip"`` or ``"auto"`` (uv when it is on PATH).

    A venv is built in a temporary folder next to its final place and renamed
    into place once complete (with a marker file naming its pins), so a build
    that failed half-way is never reused. Its console scripts keep the
    temporary path in their shebangs: asgifuzz only uses ``python -m``.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        log: Callable[[str], None] | None = None,
        run: Run | None = None,
        installer: Literal["auto", "uv", "pip"] = "auto",
    ) -> None:
        default = Path.home() / ".cache" / "asgifuzz" / "venvs"
        self.root = Path(
            root or os.environ.get("ASGIFUZZ_CACHE") or default
        ).expanduser()
        self._log = log or to_stderr
        self._run = run or _run_command
        self._uv: str | None = "uv" if installer == "uv" else None
        if installer == "auto":
            self._uv = shutil.which("uv")

    def path(self, package: str, version: str, extras: Sequence[str] = ()) -> Path:
        """Where the venv of ``package==version`` (with ``extras``) lives."""
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        more = "".join("+" + _REQ_NAME.split(x, maxsplit=1)[0] for x in extras)
        return self.root / f"{package.lower()}-{version}-py{py}{more.lower()}"

    def _is_ready(self, venv: Path, pins: list[str]) -> bool:
        try:
            marker = json.loads((venv / _MARKER).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(marker, dict) and marker.get("pins") == pins

    def _steps(
        self, venv: Path, package: str, version: str, pins: list[str]
    ) -> list[tuple[str, list[str]]]:
        py = str(venv_python(venv))
        if self._uv:
            create = [self._uv, "venv", "-q", "--python", sys.executable, str(venv)]
            install = [self._uv, "pip", "install", "-q", "--python", py]
        else:
            create = [sys.executable, "-m", "venv", str(venv)]
            install = [py, "-m", "pip", "install", "-q"]
        shown = ", ".join(p.replace("==", " ") for p in pins if "==" in p)
        return [
            (f"creating a venv for {package} {version} in {self.root} ...", create),
            (
                f"installing {package} {version} ({shown or 'no pins'}) ...",
                [*install, *pins, f"{package}=={version}"],
            ),
            self._own_step(venv, install),
        ]

    def _own_step(self, venv: Path, install: list[str]) -> tuple[str, list[str]]:
        """Installing this asgifuzz into ``venv``: editable from its checkout,
        else a copy of the installed package."""
        root, pkg = _source_root(), Path(__file__).resolve().parents[1]
        if root is not None:
            how, own = "editable", [*install, "--no-deps", "-e", str(root)]
        else:  # an installed asgifuzz: copy its package into the venv
            how, own = "copied", [str(venv_python(venv)), "-c", _COPY, str(pkg)]
        return f"installing asgifuzz from {root or pkg} ({how}) ...", own

    def _refresh_own(self, venv: Path) -> None:
        """Install this asgifuzz again into a cached venv that holds another one
        (a venv made from a checkout since moved or deleted, or from another
        checkout, would replay with that code, or fail to import it)."""
        source = asgifuzz_source()
        marker = json.loads((venv / _MARKER).read_text())
        if marker.get("asgifuzz") == source:
            return
        py = str(venv_python(venv))
        if self._uv:
            install = [self._uv, "pip", "install", "-q", "--python", py]
        else:
            install = [py, "-m", "pip", "install", "-q"]
        message, cmd = self._own_step(venv, install)
        self._log(f"bisect: {venv.name}: {message}")
        proc = self._run(cmd, None)
        if proc.returncode != 0:
            raise VenvBuildError(
                f"installing asgifuzz into {venv} failed: `{shlex.join(cmd)}` "
                f"exited {proc.returncode}: {output_tail(proc)}; delete {venv} to "
                "build it again"
            )
        marker["asgifuzz"] = source
        write_atomically(venv / _MARKER, marker)

    def ensure(self, package: str, version: str, extras: Sequence[str] = ()) -> Path:
        """The venv of ``package==version``, built first unless cached and current.

        ``extras`` are more requirements installed beside it (e.g. ``"uvicorn"``,
        for ``asgifuzz confirm``); such a venv has its own folder.
        """
        pins = [*era_pins(package, version), *extras]
        final = self.path(package, version, extras)
        if self._is_ready(final, pins):
            self._refresh_own(final)
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{final.name}."))
        started = time.monotonic()
        try:
            venv = work / "venv"
            for message, cmd in self._steps(venv, package, version, pins):
                self._log(f"bisect: {message}")
                proc = self._run(cmd, None)
                if proc.returncode != 0:
                    raise VenvBuildError(
                        f"building the venv of {package} {version} failed: "
                        f"`{shlex.join(cmd)}` exited {proc.returncode}: {output_tail(proc)}; "
                        "check that the package index is reachable, or leave this "
                        "release out with --from/--to"
                    )
            marker = {"package": package, "version": version, "pins": pins}
            marker["asgifuzz"] = asgifuzz_source()
            (venv / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            if not self._is_ready(final, pins):  # else: built meanwhile elsewhere
                if final.exists():  # stale (other pins): move it aside, then swap
                    final.rename(work / "stale")
                venv.rename(final)
            took = time.monotonic() - started
            self._log(f"bisect: {final.name} ready in {took:.0f}s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return final

    def replay(
        self, path: Path, package: str, version: str, backend: str
    ) -> tuple[ReplayStatus, str]:
        """Replay the case at ``path`` on ``package==version``: the `ReplayStatus`.

        Exit status 0 passes; 1 fails, or fails with other keys than a corpus
        entry's own (its first line says which: ``asgifuzz._corpus.replay.classify``).
        Anything else (2: bad input for that release; a crash) is a `ReplayError`.
        """
        venv = self.ensure(package, version)
        cmd = ["-m", "asgifuzz", "replay", str(path.resolve())]
        proc = self.run_python(venv, [*cmd, "--backend", backend])
        said = proc.stdout.partition("\n")[0].removeprefix(f"{path.resolve()}: ")
        if proc.returncode == 0:
            return "passes", ""
        if proc.returncode == 1 and said.startswith(("still failing", "fails")):
            return "fails", ""
        if proc.returncode == 1 and said.startswith("failing differently"):
            return "other", said.removeprefix("failing differently ")
        raise ReplayError(
            f"replay on {package} {version} exited {proc.returncode}: {output_tail(proc)}"
        )

    def run_python(self, venv: Path, args: Sequence[str]) -> Completed:
        """Run the venv's ``python`` with ``args``, in the venv's folder."""
        return self._run([str(venv_python(venv)), *args], venv)
