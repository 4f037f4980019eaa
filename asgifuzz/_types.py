"""The names every layer of asgifuzz shares: ASGI aliases, backends, HTTP methods.

Imports nothing of asgifuzz, so any module may import it (the aliases are those
of ``starlette/types.py``, without importing Starlette).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The event loops a case runs on (anyio backends).
BACKENDS = ("asyncio", "trio")
#: What ``--backend`` accepts, and the backends each choice runs.
BACKEND_CHOICES: dict[str, tuple[str, ...]] = {
    "asyncio": ("asyncio",),
    "trio": ("trio",),
    "both": BACKENDS,
}
#: The methods generated requests use (the built-in endpoint accepts each).
METHODS = ("GET", "POST", "PUT", "HEAD", "OPTIONS")
#: Every method a case or a ``--route`` may name.
ALL_METHODS = (*METHODS, "PATCH", "DELETE")
