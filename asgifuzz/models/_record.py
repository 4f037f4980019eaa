"""What a run leaves behind: the recorder the live models write to, and the taps.

A `Tap` is a pure-ASGI layer put between every pair of layers; it adds no
checkpoint, so it changes no interleaving, and records each message crossing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from asgifuzz._types import ASGIApp, Message, Receive, Scope, Send


@dataclass(slots=True)
class Event:
    """One thing that happened, at logical time ``tick`` and virtual time ``time``.

    ``where`` is the index of a boundary (0 is the server's) for ``receive``,
    ``send``, ``raise`` and ``return`` events, or -1 for model notes. ``detail``
    is for people (timelines, messages); a ``raise`` event also names the
    exception's type in ``exc_type``, for the oracles.
    """

    tick: int
    time: float
    where: int
    kind: str
    message: dict[str, Any] | None = None
    detail: str = ""
    exc_type: str = ""


@dataclass(slots=True)
class Read:
    """What a layer or the endpoint read of the request body.

    ``who`` names the reader for people; ``layer`` is its index in the stack
    (None: the endpoint).
    """

    who: str
    data: bytes
    complete: bool
    error: str | None = None
    layer: int | None = None


@dataclass(slots=True)
class Background:
    """One background task: who attached it and when it ran.

    ``owner`` names it for people; ``layer`` is the owner's index in the stack
    (None: the endpoint); ``raised`` is the exception the task raised, if any.
    """

    owner: str
    runs: int = 0
    started: int | None = None
    finished: int | None = None
    raised: BaseException | None = None
    response_complete_at_start: bool = False
    response_complete_at_end: bool = False
    layer: int | None = None


@dataclass(slots=True)
class LifespanRecord:
    """What a lifespan session did: the lifespan messages at every boundary
    (``events``, as `Event` s with the recorder's ticks), the state written at
    startup (``written``: key -> its value, ``writers``: key -> who wrote it),
    and the ``scope["state"]`` the request reached the app with (``seen``;
    None: no request reached it)."""

    events: list[Event] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)
    writers: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Any] | None = None


@dataclass
class Recorder:
    """Collects everything the live app and the driver do during one run."""

    boundaries: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    raised: list[BaseException] = field(default_factory=list)
    handled: list[BaseException] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)
    chunks_made: list[int] = field(default_factory=list)
    disconnects_seen: list[tuple[str, int]] = field(default_factory=list)
    #: The ids of the model exceptions (in ``raised``, alone or in a group)
    #: that crossed each boundary. Ids, not objects: holding an exception (and
    #: so its traceback and frames) would keep alive what the app leaked.
    crossed: list[tuple[int, frozenset[int]]] = field(default_factory=list)
    response_complete: int | None = None
    disconnected: int | None = None
    #: When each of the server's ``send()`` calls returned: ``(tick, n)`` for
    #: its ``n``-th message (0-based, in the order of the ``send`` events at
    #: boundary 0), ``tick`` the last event before it returned. A ``send()``
    #: that raised or was cancelled has no entry. Recording adds no event and
    #: no checkpoint, so it changes neither ticks nor interleavings.
    send_returned: list[tuple[int, int]] = field(default_factory=list)
    #: The extensions the scope advertised at each boundary (by `Tap`; the
    #: server's, boundary 0, by the driver).
    advertised: dict[int, tuple[str, ...]] = field(default_factory=dict)
    #: A lifespan session's record (None: the case is not a session).
    lifespan: LifespanRecord | None = None
    #: The virtual clock; the driver sets it (callable from worker threads too).
    clock: Callable[[], float] = field(default=lambda: 0.0)
    _tick: int = 0

    def tick(self) -> int:
        self._tick += 1
        return self._tick

    @property
    def last_tick(self) -> int:
        """The tick of the last event so far (0: none yet)."""
        return self._tick

    def log(
        self,
        where: int,
        kind: str,
        message: Message | None = None,
        detail: str = "",
        exc_type: str = "",
    ) -> int:
        tick = self.tick()
        copy = None
        if message is not None:
            copy = dict(message)
            if "headers" in copy:
                copy["headers"] = [tuple(h) for h in copy["headers"]]
        self.events.append(
            Event(tick, self.clock(), where, kind, copy, detail, exc_type)
        )
        return tick

    def log_raise(self, where: int, exc: BaseException) -> int:
        """An exception crossing boundary ``where``: its text and its type."""
        return self.log(
            where, "raise", detail=describe_briefly(exc), exc_type=type(exc).__name__
        )

    def note(self, detail: str) -> int:
        return self.log(-1, "note", detail=detail)

    def model_raise(self, exc: BaseException) -> BaseException:
        self.raised.append(exc)
        self.note(f"raise {type(exc).__name__}: {exc}")
        return exc


def describe_briefly(exc: BaseException) -> str:
    """``Type: message`` without addresses (cancellations show only their type)."""
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _ids(exc: BaseException) -> frozenset[int]:
    ids, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if id(e) not in ids:
            ids.add(id(e))
            members = getattr(e, "exceptions", None)
            if isinstance(members, list | tuple):
                todo += [m for m in members if isinstance(m, BaseException)]
    return frozenset(ids)


class Tap:
    """A recording pure-ASGI layer between two layers (one boundary)."""

    def __init__(self, app: ASGIApp, *, recorder: Recorder, where: int) -> None:
        self.app = app
        self.rec = recorder
        self.where = where

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rec, where = self.rec, self.where
        if scope["type"] == "lifespan":  # not part of the request's story
            await self.app(scope, receive, send)
            return
        rec.advertised[where] = tuple(scope.get("extensions") or ())

        async def tapped_receive() -> Message:
            message = await receive()
            rec.log(where, "receive", message)
            return message

        async def tapped_send(message: Message) -> None:
            rec.log(where, "send", message)
            await send(message)

        try:
            await self.app(scope, tapped_receive, tapped_send)
        except BaseException as exc:
            rec.log_raise(where, exc)
            # Only the model's exceptions and their members: alive until the
            # run ends (rec.raised holds them), so their ids cannot be reused.
            alive = frozenset().union(*map(_ids, rec.raised))
            rec.crossed.append((where, _ids(exc) & alive))
            raise
        rec.log(where, "return")
