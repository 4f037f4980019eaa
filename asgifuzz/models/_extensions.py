"""Endpoints' uses of the ASGI HTTP extensions (trailers, pathsend, zero-copy
send, early hints): each uses its extension where the scope advertises it and answers
plainly where it does not (https://asgi.readthedocs.io/en/latest/extensions.html)."""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

from starlette.responses import PlainTextResponse

from asgifuzz._types import Receive, Scope, Send

#: The trailer a ``trailers`` endpoint sends: the body's digest.
TRAILER = b"x-content-sha256"
#: The extension a ``zerocopysend`` endpoint uses where it is advertised.
ZEROCOPYSEND = "http.response.zerocopysend"
#: The link an ``early_hint`` endpoint hints.
LINK = b"</style.css>; rel=preload; as=style"

_files: dict[bytes, str] = {}
_folder: list[str] = []


def file_of(content: bytes) -> str:
    """The path of a file holding ``content``, in a folder of this process
    (made once, removed at exit), for ``pathsend`` and ``zerocopysend``
    endpoints."""
    if content not in _files:
        if not _folder:
            _folder.append(tempfile.mkdtemp(prefix="asgifuzz-"))
            atexit.register(shutil.rmtree, _folder[0], True)
        digest = hashlib.sha256(content).hexdigest()[:16]
        path = Path(_folder[0]) / f"{digest}-{len(content)}.txt"
        path.write_bytes(content)
        _files[content] = str(path)
    return _files[content]


class TrailersResponse(PlainTextResponse):
    """A plain response that announces trailers and sends its body's digest
    in them, where ``http.response.trailers`` is advertised."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.trailers" not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": self.body})
        digest = hashlib.sha256(self.body).hexdigest().encode()
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(TRAILER, digest)],
                "more_trailers": False,
            }
        )
        if self.background is not None:
            await self.background()


class ZeroCopyResponse(PlainTextResponse):
    """A plain response whose body, where ``http.response.zerocopysend`` is
    advertised, comes from a file (`file_of`) in three messages: a zero-copy
    send of its first third (``offset`` 0, ``count``), a body message with the
    second, and a zero-copy send of the rest from the file's position (no
    ``offset`` nor ``count``: up to the end). The file is closed once sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if ZEROCOPYSEND not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        content = bytes(self.body)
        first, second = len(content) // 3, 2 * len(content) // 3
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        # A small local file, read by the server: no thread (which would pause
        # the virtual clock) for its open.
        with open(file_of(content), "rb") as file:  # noqa: ASYNC230
            await send(
                {
                    "type": ZEROCOPYSEND,
                    "file": file,
                    "offset": 0,
                    "count": first,
                    "more_body": True,
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": content[first:second],
                    "more_body": True,
                }
            )
            file.seek(second)
            await send({"type": ZEROCOPYSEND, "file": file})
        if self.background is not None:
            await self.background()


class EarlyHintResponse(PlainTextResponse):
    """A plain response preceded by an early hint, where
    ``http.response.early_hint`` is advertised."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.early_hint" in scope.get("extensions", {}):
            await send({"type": "http.response.early_hint", "links": [LINK]})
        await super().__call__(scope, receive, send)
