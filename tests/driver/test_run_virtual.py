"""`run_virtual` closes its loop as ``asyncio.Runner`` does, or keeps a clean one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgifuzz._driver import vtime
from asgifuzz._driver.runner import run
from asgifuzz._driver.vtime import VirtualTimeLoop, close_spare_loop, run_virtual
from asgifuzz.models import Case
from asgifuzz.strategies import cases


def test_returns_the_result_on_virtual_time() -> None:
    async def main() -> float:
        await asyncio.sleep(3600)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(3600)


def test_cancels_left_over_tasks_and_reports_their_errors() -> None:
    seen: list[str] = []
    handled: list[dict[str, Any]] = []

    async def cleans_up() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            seen.append("cleaned up")

    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ValueError("broke while cancelled") from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: handled.append(context))
        asyncio.create_task(cleans_up())  # noqa: RUF006  # left over on purpose
        asyncio.create_task(fails_on_cancel())  # noqa: RUF006
        await asyncio.sleep(0)

    run_virtual(main())
    assert seen == ["cleaned up"]
    assert [str(c["exception"]) for c in handled] == ["broke while cancelled"]
    assert handled[0]["message"].startswith("unhandled exception during")


def test_shuts_down_async_generators_and_closes_the_loop() -> None:
    closed: list[str] = []
    loops: list[asyncio.AbstractEventLoop] = []
    kept: list[object] = []  # the generator, alive past the run: not collected

    async def gen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append("generator closed")

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        it = gen()
        await it.__anext__()
        kept.append(it)

    run_virtual(main())
    assert closed == ["generator closed"]
    assert isinstance(loops[0], VirtualTimeLoop)
    assert loops[0].is_closed()


def test_the_main_coroutine_s_error_propagates_and_the_loop_closes() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        raise KeyError("from the run")

    with pytest.raises(KeyError, match="from the run"):
        run_virtual(main())
    assert loops[0].is_closed()


def test_the_selector_polls_only_for_files_besides_its_self_pipe() -> None:
    loop = VirtualTimeLoop()
    a, b = socket.socketpair()
    try:
        selector = loop._selector  # type: ignore[attr-defined]  # the loop's own
        loop.call_soon_threadsafe(lambda: None)  # a byte on the self-pipe
        assert selector.select(0) == []  # ready callbacks: not polled
        assert len(selector.select(None)) == 1  # idle: polled, the pipe's byte
        b.send(b"x")
        loop.add_reader(a, lambda: None)
        # Another file: polled even with callbacks ready (the pipe's byte is
        # still unread, too: the loop reads it in a callback).
        assert a in [key.fileobj for key, _ in selector.select(0)]
        loop.remove_reader(a)
    finally:
        loop.close()
        a.close()
        b.close()


def _loop_of_a_run(body: Any = None) -> asyncio.AbstractEventLoop:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        if body is not None:
            await body()

    run_virtual(main())
    return loops[0]


async def _timer_cancelled() -> None:
    # anyio's way: a deadline's timer, cancelled when its scope exits.
    with anyio.move_on_after(60):
        await asyncio.sleep(5)


def test_a_clean_run_hands_its_loop_to_the_next_one_as_new() -> None:
    close_spare_loop()
    first = _loop_of_a_run(_timer_cancelled)
    times: list[float] = []

    async def reads_the_clock() -> None:
        times.append(asyncio.get_running_loop().time())

    second = _loop_of_a_run(reads_the_clock)
    assert second is first
    assert not first.is_closed()
    assert times == [0.0]  # the clock went back to 0, the cancelled timer is gone
    assert not first._scheduled  # type: ignore[attr-defined]
    close_spare_loop()
    assert first.is_closed()
    assert _loop_of_a_run() is not first


async def _leaves_a_task() -> None:
    asyncio.get_running_loop().create_task(asyncio.sleep(1))


async def _leaves_a_timer() -> None:
    asyncio.get_running_loop().call_later(1, lambda: None)


async def _leaves_a_run_variable() -> None:
    anyio.lowlevel.RunVar[int]("asgifuzz-test").set(1)


async def _sets_a_handler() -> None:
    asyncio.get_running_loop().set_exception_handler(lambda _loop, _context: None)


async def _sets_a_default_executor() -> None:
    # What run_in_executor(None, ...) does first (without a thread to wait for).
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))


async def _leaves_a_byte_on_the_self_pipe() -> None:
    loop = asyncio.get_running_loop()
    loop._write_to_self()  # type: ignore[attr-defined]  # as a thread's wake-up does


async def _deadlocks() -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.get_running_loop().create_future()


@pytest.mark.parametrize(
    "dirty",
    [
        _leaves_a_task,
        _leaves_a_timer,
        _leaves_a_run_variable,
        _sets_a_handler,
        _sets_a_default_executor,
        _leaves_a_byte_on_the_self_pipe,
        _deadlocks,
    ],
)
def test_a_run_that_leaves_anything_behind_closes_its_loop(dirty: Any) -> None:
    close_spare_loop()
    loop = _loop_of_a_run(dirty)
    assert loop.is_closed()
    assert _loop_of_a_run() is not loop


def test_a_run_left_with_an_async_generator_closes_its_loop() -> None:
    kept: list[object] = []

    async def gen() -> AsyncIterator[int]:
        yield 1

    async def starts_one() -> None:
        it = gen()
        await it.__anext__()
        kept.append(it)

    loop = _loop_of_a_run(starts_one)
    assert loop.is_closed()


def test_a_run_off_the_main_thread_closes_its_loop() -> None:
    close_spare_loop()
    loops: list[asyncio.AbstractEventLoop] = []
    thread = threading.Thread(target=lambda: loops.append(_loop_of_a_run()))
    thread.start()
    thread.join()
    assert loops[0].is_closed()


@settings(max_examples=30, deadline=None, database=None)
@given(case=cases(scopes=("http", "websocket", "lifespan")), others=st.integers(1, 3))
def test_a_case_replays_alike_on_a_fresh_loop_and_after_other_cases(
    case: Case, others: int
) -> None:
    def transcript() -> list[object]:
        outcome = run(case, "asyncio")
        events: list[object] = [
            (e.tick, e.time, e.where, e.kind, repr(e.message), e.detail)
            for e in outcome.recorder.events
        ]
        return [*events, outcome.summary()]

    close_spare_loop()
    fresh = transcript()
    for _ in range(others):
        run(Case(), "asyncio")
    assert vtime._spare  # the next run reuses a loop
    assert transcript() == fresh


def test_tasks_print_short_and_repr_as_asyncio_s() -> None:
    async def main() -> tuple[str, str]:
        task = asyncio.current_task()
        assert task is not None
        return str(task), repr(task)

    short, full = run_virtual(main())
    assert short.startswith("<Task 'Task-")
    # asyncio's own repr (what Outcome.pending_tasks lists): the coroutine too.
    assert full.startswith("<Task pending name='Task-")
    assert "coro=<" in full
    assert "main" in full


def test_a_task_factory_or_debug_mode_gets_asyncio_s_own_tasks() -> None:
    made: list[object] = []

    def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)
        await loop.create_task(asyncio.sleep(0))
        loop.set_task_factory(None)
        loop.set_debug(True)
        task = loop.create_task(asyncio.sleep(0))
        assert not str(task).startswith("<Task 'Task-")
        await task
        loop.set_debug(False)

    run_virtual(main())
    assert len(made) == 1
