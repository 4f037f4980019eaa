"""What the benchmarks ran on: CPU, cores, load, Python and the package versions."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("starlette", "anyio", "trio", "hypothesis", "httpx", "httpx2")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each package (None: not installed)."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def venv_versions(python: Path | str) -> dict[str, str | None]:
    """`versions` as seen by another interpreter (a release's venv)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import _machine; "
        "print(json.dumps(_machine.versions()))"
    )
    here = str(Path(__file__).resolve().parent)
    proc = subprocess.run(
        [str(python), "-c", code, here], capture_output=True, text=True, check=False
    )
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def describe(load: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """The machine as JSON-ready data; ``load`` is ``os.getloadavg()`` at the start."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": list(load or os.getloadavg()),
        "versions": versions(),
    }


def markdown(machine: dict[str, Any]) -> str:
    """One paragraph describing the machine, for the Markdown results."""
    load = ", ".join(f"{x:.2f}" for x in machine["loadavg_start"])
    vs = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v is not None)
    return (
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python "
        f"{machine['python']} ({machine['platform']}); {vs}; load average at the "
        f"start {load} (1, 5, 15 min); {machine['date']}."
    )
