"""The lifespan session's data: its JSON form, and old cases left as they were."""

from __future__ import annotations

import json

import pytest

from asgifuzz._errors import CaseFormatError
from asgifuzz.models import Case, Layer, Lifespan, Stack, case_to_data


def test_a_session_round_trips_through_json() -> None:
    case = Case(
        stack=Stack((Layer("lifespan.wrap"), Layer("lifespan.handle"))),
        lifespan=Lifespan(app="raw", startup="fail", message="", state=("db", "cache")),
    )
    assert Case.from_json(case.to_json()) == case


def test_a_case_without_lifespan_is_written_as_before() -> None:
    # The top-level keys of format 1 before sessions: its JSON (and hash) stays.
    assert set(case_to_data(Case())) == {
        *("format", "stack", "endpoint", "request", "client", "server", "seed"),
    }
    assert Case.from_json(Case().to_json()).lifespan is None


@pytest.mark.parametrize(
    ("lifespan", "field"),
    [
        ({"app": "django"}, "'lifespan.app'"),
        ({"startup": "later"}, "'lifespan.startup'"),
        ({"state": ["db", "db"]}, "'lifespan.state'"),
        ({"state": ["x"]}, "'lifespan.state'"),
        ({"state": "db"}, "'lifespan.state'"),
        ({"when": 1}, "'lifespan'"),
        ({"message": 3}, "'lifespan.message'"),
    ],
)
def test_a_bad_session_names_the_field(lifespan: object, field: str) -> None:
    text = Case().to_json()[:-1] + f', "lifespan": {json.dumps(lifespan)}}}'
    with pytest.raises(CaseFormatError, match=field):
        Case.from_json(text)


def test_a_session_with_a_user_app_is_refused() -> None:
    text = Case(app="app").to_json()[:-1] + ', "lifespan": {}}'
    with pytest.raises(CaseFormatError, match="'lifespan' is set with 'app'"):
        Case.from_json(text)
