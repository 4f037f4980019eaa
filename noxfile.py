"""Version matrix: the test suite against other Starlette/anyio/trio releases."""

from __future__ import annotations

import nox

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
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
