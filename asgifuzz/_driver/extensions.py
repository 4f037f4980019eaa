"""The ASGI HTTP extensions each server profile advertises, and what the
server does with their messages (https://asgi.readthedocs.io/en/latest/extensions.html).

Read from the servers' sources (uvicorn 0.54, hypercorn 0.18, daphne 4.2.3,
granian 2.8): uvicorn and daphne advertise no extension (no ``extensions``
key); hypercorn advertises ``{}`` on HTTP/1.1, and ``http.response.trailers``,
``http.response.push`` and ``http.response.early_hint`` on HTTP/2 and 3
(``protocol/http_stream.py``: ``TRAILERS_VERSIONS``, ``PUSH_VERSIONS``,
``EARLY_HINTS_VERSIONS``); granian advertises ``http.response.pathsend`` on
every version (``src/asgi/utils.rs``), and ``websocket.http.response`` on HTTP
scopes too (measured on granian 2.8.9: tests/conformance). No server advertises
``http.response.zerocopysend``. The ``strict`` profile (spec 2.4) advertises
on HTTP/2 every extension modelled here, ``http.response.zerocopysend`` too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from asgifuzz._driver.outcome import ServerResponse
from asgifuzz._types import Message

TRAILERS = "http.response.trailers"
PATHSEND = "http.response.pathsend"
EARLY_HINT = "http.response.early_hint"
ZEROCOPYSEND = "http.response.zerocopysend"
PUSH = "http.response.push"
#: Denial responses to a websocket handshake; granian advertises it on HTTP too.
WS_DENIAL = "websocket.http.response"
#: The message types of the modelled extensions, by extension name.
MESSAGE_TYPES = {
    TRAILERS: TRAILERS,
    PATHSEND: PATHSEND,
    EARLY_HINT: EARLY_HINT,
    ZEROCOPYSEND: ZEROCOPYSEND,
}

#: ``scope["extensions"]`` per (profile, HTTP version); None: the key is absent.
ADVERTISED: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("uvicorn", "1.1"): None,
    ("daphne", "1.1"): None,
    ("hypercorn", "1.1"): (),
    ("hypercorn", "2"): (TRAILERS, PUSH, EARLY_HINT),
    ("granian", "1.1"): (PATHSEND, WS_DENIAL),
    ("granian", "2"): (PATHSEND, WS_DENIAL),
    ("strict", "1.1"): None,
    ("strict", "2"): (TRAILERS, PATHSEND, EARLY_HINT, ZEROCOPYSEND),
}


def scope_extensions(profile: str, http_version: str) -> dict[str, Any] | None:
    """A fresh ``scope["extensions"]`` for the profile, or None (no key)."""
    names = ADVERTISED[profile, http_version]
    return None if names is None else {name: {} for name in names}


def takes(
    response: ServerResponse, advertised: dict[str, Any] | None, message: Message
) -> bool:
    """Handle an extension message the server advertised and may take now
    (True), or leave it to the caller to refuse (False).

    Trailers are taken after the final body of a response that announced them
    (``trailers: True``); a path after the start and before any body, which it
    completes (the server reads the file); a zero-copy send after the start and
    before the final body, as often as the app likes and mixed with body
    messages (the server reads the file's bytes: `zerocopy_bytes`); an early
    hint before any body (as hypercorn: its state is still ``REQUEST``).
    """
    kind = message.get("type")
    if not advertised or kind not in advertised or kind not in MESSAGE_TYPES.values():
        return False
    if kind == TRAILERS:
        if not (response.trailers_expected and response.body_done):
            return False
        response.trailers += [tuple(h) for h in message.get("headers", [])]
        if not message.get("more_trailers", False):
            response.complete = True
        return True
    if kind == PATHSEND:
        if not response.started or response.body_messages:
            return False
        response.body += Path(str(message.get("path", ""))).read_bytes()
        response.body_messages += 1
        response.pathsend = str(message.get("path", ""))
        response.body_done = True
        response.complete = not response.trailers_expected
        return True
    if kind == ZEROCOPYSEND:
        if not response.started or response.body_done:
            return False
        response.body += zerocopy_bytes(message)
        response.body_messages += 1
        if not message.get("more_body", False):
            response.body_done = True
            response.complete = not response.trailers_expected
        return True
    if response.body_messages:  # an early hint, after the body began
        return False
    response.hints += [bytes(link) for link in message.get("links", [])]
    return True


def zerocopy_bytes(message: Message) -> bytes:
    """The bytes a ``http.response.zerocopysend`` sends from its ``file``: from
    ``offset`` (the file's position stays), or else from the file's position
    (which moves past them, as ``sendfile`` with no offset), ``count`` bytes or
    up to the end."""
    fd = message["file"].fileno()
    offset, count = message.get("offset"), message.get("count")
    want = -1 if count is None else int(count)
    chunks: list[bytes] = []
    while want:
        size = 1 << 16 if want < 0 else min(want, 1 << 16)
        if offset is None:
            chunk = os.read(fd, size)
        else:
            chunk = os.pread(fd, size, int(offset) + sum(map(len, chunks)))
        if not chunk:
            break
        chunks.append(chunk)
        want = want if want < 0 else want - len(chunk)
    return b"".join(chunks)
