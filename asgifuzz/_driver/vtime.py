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
import atexit
import contextvars
import selectors
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator
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
        if timeout == 0 and len(self.get_map()) <= 1:
            # Something is ready to run, and the only file watched is the
            # loop's self-pipe: no I/O to poll for (a thread's
            # call_soon_threadsafe has already queued its callback; the byte it
            # wrote is read at the next poll). A system call saved per loop
            # iteration, about 30 a run.
            return []
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


class Task(asyncio.Task[T]):
    """An asyncio task whose ``str()`` is short: ``<Task 'Task-12'>``.

    anyio 4's ``CancelScope.cancel`` formats the task that cancels into the
    cancellation's message (``f"... by {task}"``), and a task's full repr
    formats its coroutine and its callbacks' sources: about 4 % of an asyncio
    run. Its ``repr()`` is asyncio's own (what `Outcome.pending_tasks` lists).
    """

    def __str__(self) -> str:
        return f"<Task {self.get_name()!r}>"


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time that jumps when all tasks block."""

    selector_class: type[_VirtualSelector] = _VirtualSelector

    def __init__(self) -> None:
        self.now = 0.0
        self.deadlocked = False
        super().__init__(selector=self.selector_class(self))

    def time(self) -> float:
        return self.now

    def create_task(
        self,
        coro: Generator[Any, None, T] | Coroutine[Any, Any, T],
        *,
        name: Any = None,
        context: contextvars.Context | None = None,
        **options: Any,
    ) -> asyncio.Task[T]:
        """``asyncio``'s own, but the task is a `Task` (a short ``str()``)."""
        if options or self.get_task_factory() is not None or self.get_debug():
            return super().create_task(coro, name=name, context=context, **options)
        self._check_closed()  # type: ignore[attr-defined]  # what super() does first
        return Task(coro, loop=self, name=name, context=context)

    def reset(self) -> bool:
        """Whether this loop, between runs, is as a fresh one would be (then
        it is made so: time 0, no cancelled timers), so that the next run on it
        cannot tell: no task, no callback ready, no timer that is not
        cancelled, no async generator left to finalise, no default executor,
        no file or signal watched but the self-pipe and nothing unread on it,
        no exception handler, task factory or debug mode set, no anyio run
        variable set (anyio keeps them per loop), not a deadlock's loop."""
        # Private attributes of asyncio's own loop classes, which this class
        # extends (their names are the same on Python 3.11 to 3.13).
        run_vars = getattr(anyio.lowlevel, "_run_vars", None)
        clean = (
            not self.deadlocked
            and not self._ready  # type: ignore[attr-defined]
            and all(h.cancelled() for h in self._scheduled)  # type: ignore[attr-defined]
            and not self._asyncgens  # type: ignore[attr-defined]
            and self._default_executor is None  # type: ignore[attr-defined]
            and not self._signal_handlers  # type: ignore[attr-defined]
            and len(self._selector.get_map()) == 1  # type: ignore[attr-defined]
            and not selectors.DefaultSelector.select(self._selector, 0)  # type: ignore[attr-defined]
            and self.get_exception_handler() is None
            and self.get_task_factory() is None
            and not self.get_debug()
            and run_vars is not None
            and not run_vars.get(self)
            and not asyncio.all_tasks(self)
        )
        if clean:
            self._scheduled.clear()  # type: ignore[attr-defined]
            self._timer_cancelled_count = 0
            self.now = 0.0
        return clean


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a `VirtualTimeLoop` and close the loop as
    ``asyncio.Runner`` does: the tasks left over cancelled and awaited (an
    exception from one goes to the loop's exception handler), then the async
    generators and the default executor shut down.

    Not ``asyncio.Runner`` itself: per run it also installs and restores a
    SIGINT handler (turning Ctrl-C into a cancellation of the main task) and
    runs three loop iterations to close, about 60 us of a 1 ms run. Here Ctrl-C
    raises ``KeyboardInterrupt`` where the run is, as in any Python code. The
    main coroutine runs in a copy of the current context, as under the Runner
    (``run_until_complete`` wraps it in a task, and a task copies it).

    On the main thread, a run that returned and left its loop as a fresh one
    is (`VirtualTimeLoop.reset`) hands the loop to the next run instead of
    closing it: making and closing a loop (a selector, a self-pipe, and
    anyio's state for a new loop) was about a tenth of an asyncio run. Any
    other run closes its loop, and the next one gets a fresh loop.
    """
    loop = _spare.pop() if _spare else VirtualTimeLoop()
    returned = False
    try:
        result = loop.run_until_complete(main)
        returned = True
        return result
    finally:
        if (
            returned
            and threading.current_thread() is threading.main_thread()
            and loop.reset()
        ):
            _spare.append(loop)
        else:
            try:
                _cancel_left_over(loop)
                loop.run_until_complete(_shut_down(loop))
            finally:
                loop.close()


#: The main thread's loop kept for the next run (at most one; see run_virtual).
_spare: list[VirtualTimeLoop] = []


@atexit.register
def close_spare_loop() -> None:
    """Close the loop kept for the next run, if any: the next run makes a fresh one."""
    while _spare:
        _spare.pop().close()


def _cancel_left_over(loop: asyncio.AbstractEventLoop) -> None:
    """``asyncio.runners._cancel_all_tasks``, which is private."""
    left = asyncio.all_tasks(loop)
    if not left:
        return
    for task in left:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    for task in left:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


async def _shut_down(loop: asyncio.AbstractEventLoop) -> None:
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


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
