"""Attribution with a user layer that declares it encodes (a compressor): it is
swapped for the built-in encoder of its family (``asgi.encode``, ``bhm.encode``),
which gives every response a compressor would encode a gzip stream, even an
empty body. A Starlette bug that needs those bytes stays Starlette's; the
compressor's own bugs stay its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgifuzz._corpus.entries import load_corpus, starlette_version
from asgifuzz._oracles.verdict import judge, stand_ins
from asgifuzz._oracles.violations import Violation
from asgifuzz._repro.script import render_repro
from asgifuzz._targets import specs
from asgifuzz.models import Case, Layer, Request, Stack

TARGETS = Path(__file__).parents[1] / "targets"  # declared_code.py
CORPUS = Path(__file__).parents[2] / "corpus"
#: Starlette's bug the upstream test attributes: a BaseHTTPMiddleware whose
#: dispatch raises after call_next leaves the body stream below it unfinished
#: (trio warns), corpus/bhm-body-stream-not-closed-trio.json.
(UNCLOSED,) = [
    e for e in load_corpus(CORPUS) if e.path.stem == "bhm-body-stream-not-closed-trio"
]
NEEDS_UNCLOSED = pytest.mark.skipif(
    not UNCLOSED.affects(starlette_version()),
    reason="this Starlette closes BaseHTTPMiddleware's body stream "
    "(bhm-body-stream-not-closed-trio does not affect it)",
)
ACCEPTS = Request(headers=(("accept-encoding", "br;q=1.0, gzip;q=0.8, *;q=0.1"),))


@pytest.fixture(autouse=True)
def _targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(TARGETS))
    with specs.scoped(({}, {})):
        yield
    sys.modules.pop("declared_code", None)


def _allow(bug: str = "", declared: str = "encodes='gzip'") -> None:
    spec = f"G=declared_code:Gzipper(bug={bug!r}); {declared}"
    specs.allow_middleware(specs.load_middleware(spec))


def _over_redirect(user: str = "user.G") -> Case:
    """brotli-asgi's case of the campaign: a dispatch that raises after
    call_next, a pass-through BaseHTTPMiddleware, the compressor, and
    Starlette's HTTPS redirect (an empty 307) below it."""
    return Case(
        stack=Stack(
            (
                Layer("bhm.raise_after"),
                Layer("bhm.passthrough"),
                Layer(user),
                Layer("starlette.https_redirect"),
            )
        ),
        request=ACCEPTS,
    )


def _keys(found: dict[str, list[Violation]]) -> set[str]:
    return {v.key for vs in found.values() for v in vs}


@NEEDS_UNCLOSED
def test_starlettes_bug_over_a_compressor_is_starlettes(tmp_path: Path) -> None:
    # The compressor gives the empty 307 a gzip stream (20 bytes); the
    # BaseHTTPMiddleware above it is cancelled while it streams that body and
    # leaves its body stream unfinished: I7:asyncgen on trio. A pass-through in
    # the compressor's place passes the empty body on, and nothing is left.
    _allow()
    case = _over_redirect()
    assert _keys(judge(stand_ins(case, encoders=False), ("trio",)).violations) == set()
    verdict = judge(case, ("trio",))
    assert _keys(verdict.violations) == set()
    assert _keys(verdict.elsewhere) == {"I7:asyncgen"}
    assert verdict.swapped is not None
    assert verdict.swapped.stack.layers[2] == Layer(
        "asgi.encode", options={"codings": "gzip"}
    )
    # The Starlette-only reproducer of the swapped case fails on this release.
    script = tmp_path / "repro.py"
    script.write_text(render_repro(verdict.swapped, "I7:asyncgen"))
    done = subprocess.run(
        [sys.executable, str(script), "trio"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BUG REPRODUCED" in done.stdout


@pytest.mark.parametrize(
    ("bug", "key"),
    [("truncate", "I8:body"), ("keep-length", "I11:content-length")],
)
def test_a_compressors_own_bug_stays_its_own(backend: str, bug: str, key: str) -> None:
    # Gzipper's planted bugs: a stream cut before its trailer (the body does
    # not decode), the uncompressed body's content-length kept. The built-in
    # encoder does neither.
    _allow(bug)
    case = Case(stack=Stack((Layer("user.G"),)), request=ACCEPTS)
    verdict = judge(case, (backend,))
    assert key in _keys(verdict.violations)
    assert key not in _keys(verdict.elsewhere)
    assert verdict.swapped is not None
    assert verdict.swapped.stack.layers[0].kind == "asgi.encode"


def test_a_compressor_that_declares_nothing_is_swapped_for_a_pass_through() -> None:
    _allow(declared="buffers=True")
    swapped = stand_ins(_over_redirect())
    assert swapped.stack.layers[2] == Layer("asgi.passthrough")


def test_a_base_http_compressor_is_swapped_for_the_base_http_encoder() -> None:
    specs.allow_middleware(
        specs.load_middleware("Z=declared_code:BaseGzipper; encodes=['br', 'gzip']")
    )
    swapped = stand_ins(_over_redirect("user.Z"))
    assert swapped.stack.layers[2] == Layer(
        "bhm.encode", options={"codings": "br,gzip"}
    )
    # ...and with ``encoders=False``, for a pass-through of its family.
    plain = stand_ins(_over_redirect("user.Z"), encoders=False)
    assert plain.stack.layers[2] == Layer("bhm.passthrough")
