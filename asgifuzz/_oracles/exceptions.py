"""Telling exceptions apart: groups of any kind, copies of groups, disconnects."""

from __future__ import annotations

from asgifuzz._driver.outcome import group_members
from asgifuzz._driver.server import ClientDisconnected


def members(exc: BaseException) -> list[BaseException]:
    """``exc`` and, for a group, every exception nested in it."""
    out = [exc]
    for e in group_members(exc):
        out += members(e)
    return out


def same(a: BaseException, b: BaseException) -> bool:
    """Whether ``a`` is ``b``, or a copy of group ``b`` that the machinery made.

    ``ExceptionGroup.split``/``subgroup``/``derive`` (which task groups use)
    return new group objects with the same type, message and member objects;
    policy: such a copy still is "the app's exception itself".
    """
    if a is b:
        return True
    if not (isinstance(a, BaseExceptionGroup) and isinstance(b, BaseExceptionGroup)):
        return False
    return (
        type(a) is type(b)
        and a.message == b.message
        and len(a.exceptions) == len(b.exceptions)
        and all(same(x, y) for x, y in zip(a.exceptions, b.exceptions, strict=True))
    )


def is_group(exc: BaseException) -> bool:
    return bool(group_members(exc))


def is_disconnect_error(exc: BaseException) -> bool:
    from starlette.requests import ClientDisconnect

    return isinstance(exc, ClientDisconnect | ClientDisconnected)
