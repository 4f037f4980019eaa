"""Standalone reproducers: one failing case as a script that needs only Starlette.

`render_repro` writes the source of a script for one case and one failure key:
the case's middleware and endpoint as user code (`app`, `middleware`,
`endpoint`), a scripted server and client equal to the driver's for the case's
profile and disconnect schedule, on virtual time (`server`), and the check of
that one invariant (`checks`), written in the template language of `render`.
``python repro.py [asyncio|trio]`` exits 1 while the bug shows and 0 once it is
fixed: what an upstream bug report needs.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from asgifuzz._repro.app import app_source
from asgifuzz._repro.checks import HELPERS, check_source
from asgifuzz._repro.lifespan import (
    LIFESPAN_HELPERS,
    lifespan_app_source,
    lifespan_check,
    session_source,
)
from asgifuzz._repro.render import imports, lit, render
from asgifuzz._repro.server import server_source, virtual_time
from asgifuzz._repro.tap_checks import TAP_HELPERS, takes, tap_check
from asgifuzz._repro.user import user_imports, with_user
from asgifuzz._repro.websocket import websocket_check, ws_server_source
from asgifuzz._repro.ws_helpers import WS_HELPERS
from asgifuzz.models import Case


def render_repro(
    case: Case,
    key: str,
    *,
    title: str = "",
    upstream: str = "",
    specs: Mapping[str, str] | None = None,
    app_spec: str = "",
) -> str:
    """The source of a standalone script that reproduces ``case`` failing ``key``.

    The script needs only Starlette and anyio (and trio, for ``python repro.py
    trio``); it prints what is expected, what happens and what it observed, and
    exits 1 while the bug shows, 0 when it does not. A websocket case or a
    lifespan session may hold the user's layers, given by ``specs``: the script
    imports them (and then needs their module on its path).

    Args:
        case: the failing case.
        key: its failure key, e.g. ``"I1:RuntimeError"`` or ``"I3"``.
        title: one line saying what goes wrong (a corpus entry's title).
        upstream: a link to the upstream issue, if any.
        specs: the import path (``module:Class``) of each user layer, by name.
        app_spec: the import path (``module:app``) of a websocket case's app.

    Raises:
        ValueError: ``key`` has no standalone check (the message lists those
            that do), or the case runs code a script cannot hold (the message
            names the field and why).
    """
    # The checks of what crossed the boundaries hold the user's layers anywhere.
    user = user_imports(case, specs or {}, app_spec, any_scope=takes(key))
    if case.lifespan is not None and case.scope != "http":
        raise ValueError(
            f"field 'lifespan' is set on a {case.scope} case: a script runs a "
            "lifespan session around one HTTP request only"
        )
    if case.scope == "websocket":
        obs, expected, source = (tap_check if takes(key) else websocket_check)(
            key, case
        )
        parts = [app_source(case, obs, False), ws_server_source(case, obs)]
    elif case.lifespan is not None:
        obs, expected, source = lifespan_check(key, case)
        parts = [
            lifespan_app_source(case, obs),
            server_source(case, obs, False),
            session_source(case, obs),
        ]
    else:
        obs, expected, source = (tap_check if takes(key) else check_source)(key, case)
        parts = [
            app_source(case, obs, key.startswith("I8")),
            server_source(case, obs, key.startswith("I8")),
        ]
    parts.append(virtual_time(case, "Session" if case.lifespan else "Server"))
    bug = title or f"the case breaks invariant {key}"
    constants = [("EXPECTED", expected), ("BUG", bug), ("UPSTREAM", upstream)]
    lines = [
        f"{name} = {lit(text)}"
        if len(name + lit(text)) < 86 or len(lit(text)) > 84
        else f"{name} = (\n    {lit(text)}\n)"  # as the formatter puts it
        for name, text in constants
        if text
    ]
    upstream_line = '    print(f"upstream: {UPSTREAM}")\n' if upstream else ""
    sections = [
        "# --- The app: the middleware and the endpoint of the failing case "
        + "-" * 12,
        *parts,
        BUG_SHOWS + textwrap.indent(source, "    "),
        MAIN.replace("$upstream", upstream_line),
    ]
    if obs:
        sections.insert(
            0,
            "# What the app did, for the check at the end.\nSEEN: dict[str, Any] = {}",
        )
    code = "\n\n\n".join(sections)
    helpers = [
        render(h, {f"see_{o}" for o in obs})
        for name, h in {
            **HELPERS,
            **WS_HELPERS,
            **LIFESPAN_HELPERS,
            **TAP_HELPERS,
        }.items()
        if re.search(rf"\b{name}[(,]", code)
    ]
    code = "\n\n\n".join([*helpers, code])
    doc = textwrap.fill(bug, 84).replace("\\", "\\\\").replace('"', '\\"')
    header = DOCSTRING.replace("$title", doc).replace("$key", key)
    if user:  # the script is not Starlette-only: it imports the user's code
        modules = ", ".join(sorted({line.split()[1] for line in user}))
        header = header.replace(
            "It needs only starlette and anyio (and trio for the trio backend). "
            "A scripted server\nand client",
            "It needs starlette and anyio (and trio for the trio backend), and the "
            f"code it imports\nfrom {modules}, your own. A scripted server and client",
        )
    head = "\n\n".join([header, with_user(imports(code), user), "\n".join(lines)])
    return f"{head}\n\n\n{code}\n"


DOCSTRING = '''\
"""$title

A standalone reproducer written by asgifuzz for its failure $key.

Run: python repro.py [asyncio|trio]   (exit status 1: the bug shows; 0: it does not)

It needs only starlette and anyio (and trio for the trio backend). A scripted server
and client call the app directly, on virtual time: a hang costs no wall time, and
the run replays the interleaving the fuzzer found.
"""

from __future__ import annotations'''

BUG_SHOWS = '''\
def bug_shows(backend: str) -> bool:
    """Run the case on ``backend``; whether the bug shows."""
'''

MAIN = """\
def main() -> int:
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    print(f"Starlette {version('starlette')}, anyio {version('anyio')}, on {backend}")
    print(f"expected: {EXPECTED}")
    print(f"bug: {BUG}")
$upstream    shows = bug_shows(backend)
    print("BUG REPRODUCED" if shows else "not reproduced: the expected behaviour holds")
    return 1 if shows else 0


if __name__ == "__main__":
    sys.exit(main())"""
