"""The server's HTTP version: written only when not 1.1, and only where the
profile speaks it."""

from __future__ import annotations

import pytest

from asgifuzz._errors import CaseFormatError
from asgifuzz.models import Case, Server, case_to_data


def test_http2_round_trips_and_1_1_is_not_written() -> None:
    case = Case(server=Server("hypercorn", http_version="2"))
    assert Case.from_json(case.to_json()) == case
    assert "http_version" not in case_to_data(Case())["server"]


def test_a_version_the_profile_does_not_speak_is_refused() -> None:
    text = (
        Case()
        .to_json()
        .replace('"name": "uvicorn"', '"name": "uvicorn", "http_version": "2"')
    )
    with pytest.raises(
        CaseFormatError, match=r"http_version.*must be one of \['1.1'\]"
    ):
        Case.from_json(text)
