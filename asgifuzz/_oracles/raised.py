"""Invariant I6: exceptions come out as themselves (not wrapped, collapsed,
re-raised after a layer handled them, or swallowed)."""

from __future__ import annotations

from asgifuzz._driver.outcome import describe
from asgifuzz._oracles.exceptions import is_disconnect_error, is_group, members
from asgifuzz._oracles.facts import Facts
from asgifuzz._oracles.violations import Violation


def exceptions(f: Facts) -> list[Violation]:
    """I6: what the models raised comes out of the app, or a layer handled it."""
    out: list[Violation] = []
    exc, raised = f.escaped, f.raised
    handled_ids = {id(m) for h in f.handled for m in members(h)}
    for h in f.handled:
        if (
            is_group(h)
            and id(h) not in f.model_ids
            and single_model_leaf(f, h) is not None
        ):
            out.append(
                Violation(
                    "I6",
                    f"a layer caught {describe(h)}: the app's exception reached it "
                    "wrapped in a group it did not raise",
                    "wrapped-before-handler",
                )
            )
    if exc is not None:
        out += _changed(f, exc, handled_ids)
    if f.disconnected is not None or len(raised) != 1:
        # Policy: after a disconnect cancellation may pre-empt an exception;
        # when several were raised concurrently, one may win (checked below).
        if raised and exc is None and not f.handled and f.disconnected is None:
            out.append(
                Violation(
                    "I6",
                    f"{len(raised)} exceptions were raised, none came out and no "
                    "layer handled any: all were swallowed",
                    "swallowed",
                )
            )
        return out
    escaped_ids = {id(m) for m in members(exc)} if exc is not None else set()
    for one in raised:
        if id(one) in escaped_ids or id(one) in handled_ids:
            continue
        if any(id(m) in escaped_ids for m in members(one)):
            continue
        out.append(
            Violation(
                "I6",
                f"{describe(one)} was raised, but neither came out of the app nor "
                f"was handled by a layer: it was swallowed"
                + (f" ({describe(exc)} came out instead)" if exc is not None else ""),
                "swallowed",
            )
        )
    return out


def _changed(f: Facts, exc: BaseException, handled_ids: set[int]) -> list[Violation]:
    """The escaped exception is the model's, but re-raised, collapsed or wrapped."""
    if id(exc) in handled_ids:
        return [
            Violation(
                "I6",
                f"{describe(exc)} escaped the app after a layer had handled it",
                "reraised",
            )
        ]
    if id(exc) in f.model_ids and id(exc) not in f.raised_ids:
        group = next(e for e in f.raised if id(exc) in {id(m) for m in members(e)})
        return [
            Violation(
                "I6",
                f"the app raised {describe(group)} but {describe(exc)} came out: "
                "the group was collapsed",
                "collapsed",
            )
        ]
    if id(exc) not in f.raised_ids and is_group(exc):
        inner = single_model_leaf(f, exc)
        if inner is not None:
            return [
                Violation(
                    "I6",
                    f"the app raised {describe(inner)} but {describe(exc)} came "
                    "out: it was wrapped in a group",
                    "wrapped",
                )
            ]
    return []


def single_model_leaf(f: Facts, group: BaseException) -> BaseException | None:
    """The one model exception a group wraps alone, or None.

    Policy: a group of several real failures (two model exceptions, or one and
    the server's disconnect error) is a fair way to report them.
    """
    leaves = [
        m for m in members(group) if id(m) in f.model_ids or is_disconnect_error(m)
    ]
    if len(leaves) == 1 and id(leaves[0]) in f.model_ids:
        return leaves[0]
    return None
