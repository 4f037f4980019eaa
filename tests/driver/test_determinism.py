from __future__ import annotations

import asyncio

import pytest

from asgifuzz._driver.determinism import OrderedSet, install
from asgifuzz._driver.vtime import VirtualTimeLoop


def test_ordered_set_keeps_insertion_order() -> None:
    s = OrderedSet.of([3, 1, 2])
    s.add(0)
    s.discard(1)
    s.discard(42)
    s.add(3)  # already there: stays where it was
    assert list(s) == [3, 2, 0]
    assert 2 in s
    assert 1 not in s
    assert len(s) == 3
    assert isinstance(s.copy(), OrderedSet)
    assert list(s.copy()) == [3, 2, 0]
    assert type(OrderedSet()) is OrderedSet
    assert not OrderedSet()
    assert s.pop() == 3
    s.remove(2)
    with pytest.raises(KeyError):
        s.remove(2)
    s.clear()
    assert not s


def test_install_patches_anyio_once() -> None:
    from anyio._backends import _asyncio

    install()
    install()
    assert getattr(_asyncio.CancelScope.__init__, "asgifuzz_ordered", False)


def test_virtual_time_jumps() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        return loop.time()

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        assert runner.run(main()) == pytest.approx(3600)


def test_a_deadlock_without_timers_cancels_everything() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nobody resolves it

    loop = VirtualTimeLoop()
    try:
        with pytest.raises(asyncio.CancelledError):
            loop.run_until_complete(main())
        assert loop.deadlocked
    finally:
        loop.close()
