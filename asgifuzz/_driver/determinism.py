"""Make both schedulers replayable.

trio shuffles each batch of runnable tasks with a module-level ``random.Random``;
importing Hypothesis registers it (trio's Hypothesis plugin) and switches trio to
its deterministic, seedable order. `seed_trio` seeds it from the case.

asyncio runs callbacks FIFO, but anyio keeps the tasks and child scopes of a
cancel scope in plain ``set`` objects and delivers cancellation in their
iteration order, which follows object addresses. `install` makes those sets
iterate in insertion order (a private-attribute patch of anyio's asyncio
backend, checked by the test suite on every supported anyio), so the order of
cancellation is the order tasks were started.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

_installed = False


class OrderedSet(dict[Any, None]):
    """A set that iterates in insertion order: a dict's keys, with the methods
    of ``set`` that anyio calls on these (``add``, ``remove``, ``discard``,
    iteration, ``in``, ``len``, truth).

    A dict, not a ``set`` subclass keeping its order beside it: ``add`` and
    ``remove`` are the dict's own C methods, not Python calls (anyio adds and
    removes a task or a scope several times per checkpoint-heavy run: a
    Python-level ordered set was about 7 % of a run's profile on asyncio).
    Iterating while the set changes size raises, as it does for a ``set``.
    """

    __slots__ = ()

    # No __init__ of its own: ``OrderedSet()`` is the dict's C constructor, and
    # ``OrderedSet.of(items)`` (``dict.fromkeys``) makes one from items, without
    # a Python call (about 40 of these are made per run).

    @classmethod
    def of(cls, items: Iterable[Any] = ()) -> OrderedSet:
        """An ordered set of ``items``, in their order."""
        return cls.fromkeys(items)  # type: ignore[return-value]  # cls, not dict

    # dict.setdefault(item) stores item -> None and returns None, as set.add does;
    # dict.__delitem__ raises KeyError for a missing item, as set.remove does.
    add = dict.setdefault
    remove = dict.__delitem__

    def discard(self, item: Any) -> None:
        dict.pop(self, item, None)

    def pop(self) -> Any:  # type: ignore[override]  # set.pop(): the first item
        item = next(iter(self))
        del self[item]
        return item

    def copy(self) -> OrderedSet:
        return OrderedSet.of(self)


def _ordered_init(init: Any, names: tuple[str, ...]) -> Any:
    of = OrderedSet.fromkeys

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for name in names:
            value = getattr(self, name, None)
            if type(value) is set:
                setattr(self, name, of(value))

    __init__.asgifuzz_ordered = True  # type: ignore[attr-defined]
    return __init__


def install() -> None:
    """Patch anyio's asyncio backend for insertion-ordered cancellation (idempotent)."""
    global _installed
    if _installed:
        return
    from anyio._backends import _asyncio

    for cls_name, names in (
        ("CancelScope", ("_tasks", "_child_scopes")),
        ("TaskGroup", ("_tasks",)),
    ):
        cls = getattr(_asyncio, cls_name)
        if not getattr(cls.__init__, "asgifuzz_ordered", False):
            cls.__init__ = _ordered_init(cls.__init__, names)
    _installed = True


def seed_trio(seed: int) -> None:
    """Seed trio's scheduler so that a case replays with the same interleaving."""
    from trio._core import _run

    # trio's Hypothesis plugin sets this on import of hypothesis, but not every
    # trio/Hypothesis pair runs it (trio 0.22 with a current Hypothesis does
    # not), so set it here: batches are sorted by task age, then shuffled by _r.
    _run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    _run._r.seed(seed)
