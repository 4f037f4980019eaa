"""Fuzzing the shop's middleware from pytest (``pytest`` in this folder).

test_buggy_stack fails (and saves its shrunk case to corpus/new/); the fixed
middleware passes.
"""

import asgifuzz
from middleware import (
    CancelOnDisconnectMiddleware,
    CancelOnDisconnectMiddlewareFixed,
    RequestIdMiddleware,
    TimingMiddleware,
)


@asgifuzz.given_cases(
    middleware=[RequestIdMiddleware, TimingMiddleware, CancelOnDisconnectMiddleware]
)
def test_buggy_stack(case):
    asgifuzz.check(case)


@asgifuzz.given_cases(
    middleware=[RequestIdMiddleware, TimingMiddleware, CancelOnDisconnectMiddlewareFixed]
)
def test_fixed_stack(case):
    asgifuzz.check(case)
