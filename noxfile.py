"""Version matrix: the test suite against other Starlette/anyio/trio releases, and
the fuzz matrix: one session per headline release (``fuzz(V)``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))  # asgifuzz from this checkout
from asgifuzz._releases.matrix import RELEASES  # noqa: E402
from asgifuzz._releases.venvs import era_pins  # noqa: E402

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

#: (starlette, anyio, trio) of one era each.
COMPAT = [("0.27.0", "3.7.1", "0.22.2")]


@nox.session
@nox.parametrize("starlette,anyio,trio", COMPAT, ids=[c[0] for c in COMPAT])
def compat(session: nox.Session, starlette: str, anyio: str, trio: str) -> None:
    """The whole test suite on an anyio-3 era release (CI runs this one)."""
    session.install(f"starlette=={starlette}", f"anyio=={anyio}", f"trio=={trio}")
    session.install("-e", ".[test]", f"starlette=={starlette}", f"anyio=={anyio}", f"trio=={trio}")
    session.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs
    )


@nox.session
@nox.parametrize("starlette", list(RELEASES), ids=list(RELEASES))
def fuzz(session: nox.Session, starlette: str) -> None:
    """One cell of the fuzz matrix: a release with the anyio/trio of its era.

    Fuzzes for $ASGIFUZZ_BUDGET seconds (default 60) with $ASGIFUZZ_WORKERS
    workers (default 2) into $ASGIFUZZ_OUT/<release> (default .matrix), then
    fails unless the release shows exactly the bugs the corpus expects there
    (scripts/fuzz-cell). $ASGIFUZZ_DATABASE picks the Hypothesis database.
    """
    pins = era_pins("starlette", starlette)
    session.install("-e", ".[redis,plot]", f"starlette=={starlette}", *pins)
    out = Path(os.environ.get("ASGIFUZZ_OUT", ".matrix")) / starlette
    budget = os.environ.get("ASGIFUZZ_BUDGET", "60")
    workers = os.environ.get("ASGIFUZZ_WORKERS", "2")
    session.run("bash", "scripts/fuzz-cell", str(out), budget, workers, external=True)
