"""The head of a real-server reproducer: its docstring, the imports its code
uses (the standard library's, the server's, Starlette's), and its constants."""

from __future__ import annotations

import re
import textwrap

from asgifuzz._repro.render import imports, lit

#: The imports a live script needs besides those of its app.
LIVE_IMPORTS = {
    "uvicorn": "import uvicorn",
    "hypercorn": "from hypercorn.asyncio import serve as serve_hypercorn\n"
    "from hypercorn.config import Config",
}


#: The standard library a live script may use (kept: those its code uses).
_STDLIB = (
    "import asyncio",
    "import hashlib",
    "import logging",
    "import re",
    "import socket",
    "import sys",
    "import threading",
    "import time",
    "from functools import partial",
    "from importlib.metadata import version",
    "from typing import Any",
)


#: The packages besides the standard library a live script imports from.
_THIRD_PARTY = ("anyio", "hypercorn", "starlette", "trio", "uvicorn")


def _uses(code: str, line: str) -> bool:
    """Whether ``code`` uses what the import ``line`` binds (a module: ``name.``)."""
    name = line.split()[-1]
    after = r"\." if line.startswith("import ") else r"(?!\w)"
    return re.search(rf"(?<![\w.]){name}{after}", code) is not None


def live_script(
    code: str, key: str, server: str, expected: str, title: str, more: str = ""
) -> str:
    """A real-server script: its docstring, imports (those ``code`` uses, the
    server's and ``more``) and constants, then ``code``."""
    bug = title or f"the case breaks invariant {key}"
    theirs = [x for x in imports(code).splitlines() if x]
    third = [x for x in theirs if x.split()[1].split(".")[0] in _THIRD_PARTY]
    std = [x for x in _STDLIB if _uses(code, x)]
    std += [x for x in theirs if x not in third and x not in std]
    # Sorted as isort does: the plain imports, then the from-imports, by module.
    std.sort(key=lambda x: (x.startswith("from "), x.split()[1]))
    head = [
        f'"""{textwrap.fill(bug, 84)}\n\nWritten by asgifuzz for its failure {key}, on '
        f"a real {server}.\n\nRun: python repro.py   (exit status 1: the bug shows; "
        '0: it does not)\n"""',
        "from __future__ import annotations",
        "\n".join(std),
        "\n".join(
            sorted(
                [*LIVE_IMPORTS[server].splitlines(), *third, *more.splitlines()],
                key=lambda x: (x.startswith("from "), x.split()[1]),
            )
        ),
        "\n".join(
            f"{name} = {lit(text)}"
            if len(name + lit(text)) < 86 or len(lit(text)) > 84
            else f"{name} = (\n    {lit(text)}\n)"  # as the formatter puts it
            for name, text in (("EXPECTED", expected), ("BUG", bug))
        ),
    ]
    return "\n\n".join(head) + "\n\n\n" + code + "\n"
