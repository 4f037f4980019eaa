"""Lifespan sessions as plain data: what the app does at startup and shutdown,
the state it writes, and the lifespan layers a stack may hold.

A case with a `Lifespan` (``Case.lifespan``) is a lifespan session: the server
runs the ASGI lifespan protocol (``lifespan.startup``, then one request if the
server may serve, then ``lifespan.shutdown``) through the case's stack, down to
a model app that follows the `Lifespan`. See the ASGI lifespan spec:
https://asgi.readthedocs.io/en/latest/specs/lifespan.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgifuzz.models._reader import Reader, shown

#: The app at the bottom of a session, simplest first: a Starlette app with a
#: ``lifespan=`` context manager; a plain ASGI callable speaking the protocol
#: itself; an app that does not support lifespan (http only).
LIFESPAN_APPS = ("starlette", "raw", "unsupported")
#: What a phase (startup, shutdown) does, simplest first.
PHASES = ("complete", "fail", "raise", "hang")
#: The layer kinds written for lifespan sessions (family ``lifespan``): ``wrap``
#: runs its own startup around the app's (it writes its own state key, then
#: passes every message on unchanged); ``handle`` answers the lifespan
#: protocol itself and never calls the app with it (wrong: the app's startup
#: never runs). Both pass ``http`` scopes straight through.
LIFESPAN_LAYER_KINDS = ("lifespan.wrap", "lifespan.handle")
#: The state keys a startup may write (each gets a value unique to the run).
STATE_KEYS = ("db", "cache", "tenant")


@dataclass(frozen=True)
class Lifespan:
    """The app's side of a lifespan session.

    Attributes:
        app: one of `LIFESPAN_APPS`.
        startup: one of `PHASES`: ``complete`` writes the state and completes;
            ``fail`` reports ``lifespan.startup.failed`` with ``message`` (a
            Starlette app raises in its lifespan, and Starlette reports the
            failure with the traceback); ``raise`` raises without a message
            (Starlette: as ``fail``); ``hang`` never completes. For an
            ``unsupported`` app, ``raise`` makes it raise on the lifespan scope
            and anything else makes it return at once.
        shutdown: the same for shutdown (no state is written).
        message: the message of a failure the app reports itself.
        state: the keys of `STATE_KEYS` the startup writes into
            ``scope["state"]`` (Starlette: the dict its lifespan yields).
    """

    app: str = "starlette"
    startup: str = "complete"
    shutdown: str = "complete"
    message: str = "startup failed"
    state: tuple[str, ...] = ("db",)


def lifespan_to_data(model: Lifespan) -> dict[str, Any]:
    """The JSON form of a `Lifespan` (every field: a session is written whole)."""
    return {
        "app": model.app,
        "startup": model.startup,
        "shutdown": model.shutdown,
        "message": model.message,
        "state": list(model.state),
    }


def lifespan_from_data(r: Reader, raw: object) -> Lifespan:
    """A `Lifespan` from untrusted data, refusing what is not in the format."""
    d = r.obj(raw, "lifespan", {"app", "startup", "shutdown", "message", "state"})
    state = d.get("state", ["db"])
    if (
        not isinstance(state, list)
        or not all(isinstance(k, str) and k in STATE_KEYS for k in state)
        or len(set(state)) != len(state)
    ):
        raise r.fail(
            "lifespan.state",
            f"is {shown(state)}; must be a list of distinct keys of {list(STATE_KEYS)}",
        )
    return Lifespan(
        app=r.choice(d, "app", "lifespan", LIFESPAN_APPS, "starlette"),
        startup=r.choice(d, "startup", "lifespan", PHASES, "complete"),
        shutdown=r.choice(d, "shutdown", "lifespan", PHASES, "complete"),
        message=r.str_(d, "message", "lifespan", "startup failed", max_length=200),
        state=tuple(state),
    )
