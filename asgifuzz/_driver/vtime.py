"""Virtual time and determinism for both event loops.

asyncio: `VirtualTimeLoop`, a selector loop whose clock jumps to the next timer
whenever every task is blocked (trio's ``MockClock(autojump_threshold=0)``
semantics). The selector is the one place that sees "every task is blocked": the
loop asks it to wait only when its ready queue is empty.

Worker threads: `blocking_threads` makes ``anyio.to_thread.run_sync`` run the
function in a real worker thread while the event loop waits for it, so no task
runs and virtual time cannot move while a thread works: threads pause the clock,
and where a thread finishes is deterministic.
"""

from __future__ import annotations

import asyncio
import contextvars
import selectors
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    """Never sleeps: polls, and when nothing is ready, jumps the clock instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            return self.idle(events)
        self._vloop.now += timeout
        return events

    def idle(
        self, events: list[tuple[selectors.SelectorKey, int]]
    ) -> list[tuple[selectors.SelectorKey, int]]:
        """No timer at all and nothing runnable: every task waits forever."""
        self._vloop.deadlocked = True
        for task in asyncio.all_tasks(self._vloop):
            task.cancel("asgifuzz: deadlock (every task blocked, no timer)")
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time that jumps when all tasks block."""

    selector_class: type[_VirtualSelector] = _VirtualSelector

    def __init__(self) -> None:
        self.now = 0.0
        self.deadlocked = False
        super().__init__(selector=self.selector_class(self))

    def time(self) -> float:
        return self.now


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _thread_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="asgifuzz-worker"
            )
        return _executor


async def _run_sync_blocking(func: Callable[..., T], *args: Any, **_options: Any) -> T:
    """``anyio.to_thread.run_sync`` with the loop waiting: a thread pauses the clock."""
    await anyio.lowlevel.checkpoint()  # the real one is a checkpoint too
    context = contextvars.copy_context()
    future = _thread_executor().submit(context.run, func, *args)
    return future.result()


@contextmanager
def blocking_threads() -> Iterator[None]:
    """Within the block, worker threads pause the event loop (see module docs).

    Starlette reaches threads through ``anyio.to_thread.run_sync`` looked up at
    call time (sync endpoints, sync iterators, sync background tasks, files).
    """
    original = anyio.to_thread.run_sync
    anyio.to_thread.run_sync = _run_sync_blocking  # type: ignore[assignment]
    try:
        yield
    finally:
        anyio.to_thread.run_sync = original
