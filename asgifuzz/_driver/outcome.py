"""The outcome of one run: what the server saw, what escaped, what the models did."""

from __future__ import annotations

import os
import sysconfig
import traceback
from dataclasses import dataclass, field
from typing import Any

from asgifuzz._driver.lifespan import Lifespan
from asgifuzz.models import Case
from asgifuzz.models._record import Recorder


@dataclass
class ServerResponse:
    """The response as the server received it."""

    started: bool = False
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    body_messages: int = 0
    complete: bool = False
    #: Extensions (`asgifuzz._driver.extensions`): the start announced
    #: trailers; the final body (or a path) came; the trailers, the path sent,
    #: the early hints' links.
    trailers_expected: bool = False
    body_done: bool = False
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    pathsend: str | None = None
    hints: list[bytes] = field(default_factory=list)


def group_members(exc: BaseException) -> tuple[BaseException, ...]:
    """The members of an exception group of any kind, or ``()``.

    Besides the builtin groups, anyio 3 has its own ``ExceptionGroup`` (a
    ``BaseException``) and old trio its ``MultiError``; both keep ``exceptions``.
    """
    members = getattr(exc, "exceptions", None)
    if isinstance(members, list | tuple) and all(
        isinstance(m, BaseException) for m in members
    ):
        return tuple(members)
    return ()


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc``, its causes, contexts and group members (each once)."""
    seen: dict[int, BaseException] = {}
    todo = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen[id(e)] = e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += list(group_members(e))
    return list(seen.values())


@dataclass
class Outcome:
    """Everything one run of a case left behind (see `asgifuzz.run`)."""

    case: Case
    backend: str
    recorder: Recorder
    escaped: BaseException | None = None
    escaped_frames: list[tuple[str, int, str]] = field(default_factory=list)
    #: The frames of each exception in the escaped one's ``__context__`` chain,
    #: outermost context first (what a failed 500 hid: `context_app_frames`).
    context_frames: list[list[tuple[str, int, str]]] = field(default_factory=list)
    returned: bool = False
    hung: bool = False
    app_cancelled: bool = False
    timed_out: bool = False
    response: ServerResponse = field(default_factory=ServerResponse)
    pending_tasks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unraisable: list[str] = field(default_factory=list)
    #: A lifespan session's server side (None: not a session), and whether
    #: the request was served (a session serves none if startup failed).
    lifespan: Lifespan | None = None
    served: bool = True

    def app_frames(
        self, limit: int = 3, frames: list[tuple[str, int, str]] | None = None
    ) -> tuple[str, ...]:
        """The innermost ``limit`` frames of the escaped exception (or of
        ``frames``) that lie in the app under test (``path:qualname``), not in
        asgifuzz's models, the event loops, anyio or the standard library (an
        ``IndexError`` raised by the standard library is located by the app's
        frame that called it)."""
        skip = ("/asgifuzz/", "/anyio/", "/trio/", "/asyncio/", "/contextlib.py")
        inside = [
            f"{_short(path)}:{name}"
            for path, _, name in (self.escaped_frames if frames is None else frames)
            if not any(s in path for s in skip) and not _in_stdlib(path)
        ]
        return tuple(inside[-limit:])

    def context_app_frames(self, depth: int) -> tuple[str, ...]:
        """`app_frames` of the ``depth``-th exception (1: the escaped one's
        ``__context__``) of the escaped exception's context chain."""
        if not 0 < depth <= len(self.context_frames):
            return ()
        return self.app_frames(frames=self.context_frames[depth - 1])

    def freeze_exceptions(self) -> None:
        """Keep a summary of the escaped traceback, then drop every traceback.

        Tracebacks hold the app's frames, and with them any object the app
        leaked; dropping them lets a garbage collection reveal the leak.
        """
        if self.escaped is not None and self.escaped.__traceback__ is not None:
            self.escaped_frames = _frames(self.escaped)
            context = self.escaped.__context__
            while context is not None and len(self.context_frames) < _CONTEXTS:
                self.context_frames.append(_frames(context))
                context = context.__context__
        rec = self.recorder
        for root in [self.escaped, *rec.raised, *rec.handled]:
            for e in _chain(root):
                e.__traceback__ = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary of the run (no transcript)."""
        r = self.response
        return {
            "backend": self.backend,
            "escaped": None if self.escaped is None else describe(self.escaped),
            "returned": self.returned,
            "hung": self.hung,
            "status": r.status,
            "response_complete": r.complete,
            "body": r.body.decode("latin-1"),
            "warnings": self.warnings,
            "pending_tasks": self.pending_tasks,
        }


#: How deep in the escaped exception's context chain frames are kept.
_CONTEXTS = 4


def _frames(exc: BaseException) -> list[tuple[str, int, str]]:
    """The file, line and function of each frame of ``exc``'s traceback."""
    # walk_tb, not extract_tb: the latter reads every frame's source line and
    # column positions (about 0.2 ms for a 20-frame traceback).
    return [
        (frame.f_code.co_filename, lineno or 0, frame.f_code.co_qualname)
        for frame, lineno in traceback.walk_tb(exc.__traceback__)
    ]


_STDLIB = tuple(
    {sysconfig.get_paths()[name] + os.sep for name in ("stdlib", "platstdlib")}
)


def _in_stdlib(path: str) -> bool:
    """Whether ``path`` is a module of the standard library (not site-packages)."""
    return path.startswith(_STDLIB) and "-packages" + os.sep not in path


def _short(path: str) -> str:
    """``.../site-packages/starlette/middleware/base.py`` -> ``starlette/middleware/base.py``."""
    return (
        path.split("site-packages/")[-1]
        if "site-packages/" in path
        else path.rsplit("/", 1)[-1]
    )


def describe(exc: BaseException) -> str:
    """``Type: message``, with group members, for messages and signatures."""
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    members = group_members(exc)
    if members:
        text += " [" + ", ".join(describe(e) for e in members) + "]"
    return text
