"""The flags of tests/fakes.py that stand for a real upstream bug agree with
that bug's corpus entry, whose affected range was measured on the releases."""

from __future__ import annotations

from pathlib import Path

from fakes import WS_RESPONSES

from asgifuzz._corpus.entries import load_entry, starlette_version

CORPUS = Path(__file__).parents[2] / "corpus"


def test_ws_responses_is_where_https_redirect_is_fixed() -> None:
    entry = load_entry(CORPUS / "https-redirect-sends-http-response-on-websocket.json")
    version = starlette_version()
    assert entry.affects(version) is not WS_RESPONSES, (
        f"Starlette {version}: the entry says affected={entry.affects(version)} "
        f"({entry.describe_range()}), fakes.WS_RESPONSES={WS_RESPONSES}"
    )
