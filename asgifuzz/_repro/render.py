"""How a reproducer's source is written: the template language, literals, the
code that raises on purpose, and the imports a script needs.

A template reads like the code it makes. A line that ends in a ``#?`` marker is
optional: ``#?a&b|!c`` keeps it when flags ``a`` and ``b`` are set, or ``c`` is
not; a marker alone stands for a blank line. The flags name what the case holds
(a layer's behaviour, the endpoint's kind, the server's profile, the client's
disconnect schedule) and what the check records (``see_reads``, ...: the
observations a script keeps in its ``SEEN`` dict), so that a script holds only
the branches its case takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from string import Template

from asgifuzz.models._compact import expression

_MARKER = re.compile(r"\s*#\?([\w|&!]+)$")


def render(template: str, flags: Iterable[str], **values: object) -> str:
    """Keep the lines whose markers hold, then substitute ``$values``.

    A value that stands alone on its line may hold several lines of code.
    """
    on = set(flags)

    def holds(term: str) -> bool:
        return term[1:] not in on if term.startswith("!") else term in on

    kept = []
    for line in template.splitlines():
        marker = _MARKER.search(line)
        if marker is not None:
            alternatives = marker.group(1).split("|")
            if not any(all(map(holds, alt.split("&"))) for alt in alternatives):
                continue
            line = line[: marker.start()]
        name = line.strip()[1:]
        if line.strip().startswith("$") and name in values:
            pad = line[: len(line) - len(line.lstrip())]
            kept += [pad + v for v in str(values.pop(name)).splitlines()]
        else:
            kept.append(line)
    return Template("\n".join(kept)).substitute(values)


def lit(value: object) -> str:
    """``repr``, with double quotes (the scripts' style) where that is a plain swap."""
    text = repr(value)
    return text if '"' in text else text.replace("'", '"')


def bytes_lit(data: bytes) -> str:
    """A bytes literal; a long one with runs of a repeated unit as a sum,
    ``b'{"data": "' + b"a" * 1048576 + b'"}'``."""
    return expression(data, 256, lit)


PAUSE = "await checkpoints($n)  # the interleaving the fuzzer found"


def boom(origin: str, obs: set[str], group: bool = False) -> str:
    """The code that raises an exception on purpose (remembered if checked)."""
    exc, lines = f"Boom({lit(origin)})", []
    if group:
        exc, lines = 'ExceptionGroup("one error", [error])', [f"error = {exc}"]
    return "\n".join([*lines, f"raise {f'raised({exc})' if 'raised' in obs else exc}"])


#: Every import a script may need; a script gets those of the names it uses.
IMPORTS = """\
import asyncio
import atexit
import gc
import hashlib
import math
import selectors
import shutil
import sys
import tempfile
import warnings
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket"""


def imports(code: str) -> str:
    """The lines of `IMPORTS` that ``code`` needs, trimmed to the names it uses."""
    out = []
    for line in IMPORTS.splitlines():
        if not line or line.startswith("import "):
            module = line.removeprefix("import ")
            if not line or re.search(rf"(?<![\w.]){re.escape(module)}\.", code):
                out.append(line)  # (the blank line parts the standard library's)
            continue
        head, _, names = line.partition(" import ")
        used = [n for n in names.split(", ") if re.search(rf"(?<![\w.\"]){n}\b", code)]
        line = f"{head} import {', '.join(used)}"
        if len(line) > 88:  # one name a line, as isort wraps it
            line = f"{head} import (\n" + "".join(f"    {n},\n" for n in used) + ")"
        if used:
            out.append(line)
    return "\n".join(out).strip("\n")
