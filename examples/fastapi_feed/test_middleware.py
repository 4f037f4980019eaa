"""Fuzzing the feed's middleware from pytest (``pytest`` in this folder).

test_buggy_timeout fails (and saves its shrunk case to corpus/new/); the fixed
middleware passes.
"""

from middleware import TimeoutMiddleware, TimeoutMiddlewareFixed

import asgifuzz


@asgifuzz.given_cases(middleware=[(TimeoutMiddleware, {"timeout": 0.5})])
def test_buggy_timeout(case):
    asgifuzz.check(case)


@asgifuzz.given_cases(middleware=[(TimeoutMiddlewareFixed, {"timeout": 0.5})])
def test_fixed_timeout(case):
    asgifuzz.check(case)
