"""`run_virtual` closes its loop as ``asyncio.Runner`` does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asgifuzz._driver.vtime import VirtualTimeLoop, run_virtual


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
