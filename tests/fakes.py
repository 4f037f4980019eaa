"""Fakes shared by tests in several folders (tests/ is on sys.path: conftest.py)."""

from __future__ import annotations

import inspect

from starlette.responses import FileResponse
from starlette.websockets import WebSocket

from asgifuzz._oracles import verdict as _verdict
from asgifuzz._oracles.verdict import Verdict
from asgifuzz._oracles.violations import Violation
from asgifuzz.models import Case


def judge_with(fail: bool):  # type: ignore[no-untyped-def]
    """A `judge` that makes up an I4 failure for every case with a body (or none)."""
    real = _verdict.judge

    def judge(case: Case, backends: tuple[str, ...] = ("asyncio", "trio")) -> Verdict:
        verdict = real(case, backends)
        for b in backends:
            verdict.violations[b] = (
                [Violation("I4", "made up for the test", "app")]
                if fail and case.request.body
                else []
            )
        verdict.violations.pop("both", None)
        return verdict

    return judge


#: Starlette's Response learned websocket scopes (denial responses, and
#: ``WebSocket.send_denial_response``) in 0.37.0. Before, a layer that answers a
#: websocket scope with a Response (``HTTPSRedirectMiddleware``) sends
#: ``http.response.start`` on it: an upstream bug, found as W1:type (corpus entry
#: https-redirect-sends-http-response-on-websocket, affected 0.15.0-0.36.3, which
#: tests/corpus/test_flags.py checks this agrees with). Tests that want no
#: finding but the user's fuzz the user's layers alone there.
WS_RESPONSES = hasattr(WebSocket, "send_denial_response")
#: Starlette serves ``http.response.pathsend`` from FileResponse since 0.38.
STARLETTE_PATHSENDS = "pathsend" in inspect.getsource(FileResponse)
