"""Fuzzing the shop's middleware from pytest (``pytest`` in this folder).

test_buggy_stack fails (and saves its shrunk cases to corpus/new/); the fixed
middleware passes.
"""

from middleware import (
    CancelOnDisconnectMiddleware,
    CancelOnDisconnectMiddlewareFixed,
    TimingMiddleware,
)

import asgifuzz


@asgifuzz.given_cases(middleware=[TimingMiddleware, CancelOnDisconnectMiddleware])
def test_buggy_stack(case):
    asgifuzz.check(case)


@asgifuzz.given_cases(middleware=[TimingMiddleware, CancelOnDisconnectMiddlewareFixed])
def test_fixed_stack(case):
    asgifuzz.check(case)
