"""Attribution's encoders (``asgi.encode``, ``bhm.encode``): what they encode,
and their standalone scripts, which agree with asgifuzz and need only Starlette."""

from __future__ import annotations

import ast
import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from test_repro import ALLOWED_IMPORTS, _agrees, run_script

from asgifuzz._driver.runner import run
from asgifuzz._oracles.verdict import judge
from asgifuzz._repro.script import render_repro
from asgifuzz.models import Case, Endpoint, Layer, Request, Stack
from asgifuzz.models._encode import accepts, encodes

GZIP = (("accept-encoding", "gzip"),)


@pytest.mark.parametrize(
    ("value", "codings", "expected"),
    [
        (b"gzip", "gzip", True),
        (b"br;q=1.0, gzip;q=0.8", "br", True),
        (b"identity", "gzip", False),
        (b"gzip;q=0", "gzip", False),
        (b"gzip;q=junk", "gzip", False),
        (b"*;q=0.1", "zstd", True),
        (b"deflate", "br,zstd", False),
    ],
)
def test_what_the_client_accepts(value: bytes, codings: str, expected: bool) -> None:
    assert accepts([(b"Accept-Encoding", value)], codings) is expected
    assert accepts([(b"x-other", value)], codings) is False


def test_what_is_encoded() -> None:
    scope = {"method": "GET", "headers": [(b"accept-encoding", b"gzip")]}
    assert encodes(scope, 200, [], "gzip")
    assert encodes(scope, 307, [(b"content-length", b"0")], "gzip")
    assert not encodes(scope, 204, [], "gzip")  # no content (RFC 9110 §6.4.1)
    assert not encodes(scope, 304, [], "gzip")
    assert not encodes(scope, 103, [], "gzip")
    assert not encodes({**scope, "method": "HEAD"}, 200, [], "gzip")
    assert not encodes(scope, 200, [(b"Content-Encoding", b"br")], "gzip")
    assert not encodes({"method": "GET", "headers": []}, 200, [], "gzip")


@pytest.mark.parametrize("kind", ["asgi.encode", "bhm.encode"])
@pytest.mark.parametrize(
    "endpoint",
    [Endpoint(), Endpoint("stream", chunks=2), Endpoint("empty", status=204)],
)
def test_the_encoders_gzip_what_a_compressor_would(
    kind: str, endpoint: Endpoint, backend: str
) -> None:
    case = Case(
        stack=Stack((Layer(kind),)), endpoint=endpoint, request=Request(headers=GZIP)
    )
    bare = run(Case(endpoint=endpoint), backend).response
    response = run(case, backend).response
    headers = dict(response.headers)
    if endpoint.kind == "empty":  # a 204: no content, so nothing encoded
        assert response.body == b""
        assert b"content-encoding" not in headers
        return
    assert headers[b"content-encoding"] == b"gzip"
    assert b"content-length" not in headers
    assert gzip.decompress(response.body) == bare.body


def test_an_empty_body_gets_a_stream_of_its_own(backend: str) -> None:
    # What a compressor gives the empty 307 of HTTPSRedirectMiddleware.
    case = Case(
        stack=Stack((Layer("asgi.encode"), Layer("starlette.https_redirect"))),
        request=Request(headers=GZIP),
    )
    response = run(case, backend).response
    assert response.status == 307
    assert response.body
    assert gzip.decompress(response.body) == b""


ENCODER_CASES = [
    Case(
        stack=Stack((Layer("asgi.encode", pauses=(1, 1)),)),
        endpoint=Endpoint("stream", chunks=2),
        request=Request(headers=GZIP),
    ),
    Case(
        stack=Stack(
            (Layer("bhm.encode", pauses=(1, 1), options={"codings": "br,gzip"}),),
            mode="wrap",
        ),
        request=Request(headers=(("accept-encoding", "br"),)),
    ),
    Case(
        stack=Stack((Layer("asgi.encode"), Layer("bhm.encode"))),
        endpoint=Endpoint("empty", status=204),
        request=Request(headers=GZIP),
    ),
    Case(  # brotli-asgi's case of the campaign, swapped
        stack=Stack(
            (
                Layer("bhm.raise_after"),
                Layer("bhm.passthrough"),
                Layer("asgi.encode", options={"codings": "br,gzip"}),
                Layer("starlette.https_redirect"),
            )
        ),
        request=Request(headers=(("accept-encoding", "br;q=1.0, gzip;q=0.8"),)),
    ),
]


@pytest.mark.parametrize("index", range(len(ENCODER_CASES)))
def test_encoder_scripts_agree_with_asgifuzz(
    index: int, backend: str, tmp_path: Path
) -> None:
    _agrees(ENCODER_CASES[index], backend, tmp_path)


def test_the_swapped_brotli_case_reproduces_on_trio(tmp_path: Path) -> None:
    source = render_repro(ENCODER_CASES[3], "I7:asyncgen")
    assert "zlib.compressobj" in source
    assert '{"br", "gzip"}' in source
    done = run_script(tmp_path, source, "trio")
    reported = {v.key for v in judge(ENCODER_CASES[3], ("trio",)).violations["trio"]}
    assert done.returncode == int("I7:asyncgen" in reported), done.stdout


def test_encoder_scripts_import_only_starlette_anyio_and_trio(tmp_path: Path) -> None:
    paths = []
    for i, case in enumerate(ENCODER_CASES):
        source = render_repro(case, "I1:RuntimeError")
        paths.append(tmp_path / f"repro{i}.py")
        paths[-1].write_text(source)
        tree = ast.parse(source)
        modules = {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        modules |= {
            n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
        }
        assert {m.partition(".")[0] for m in modules} <= ALLOWED_IMPORTS
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed here")
    rules = "E,W,F,I,UP,B,C4,SIM,PIE,RET,PT,ASYNC,RUF"  # as test_repro's
    options = ["--isolated", "--select", rules, "--ignore", "E501"]
    done = subprocess.run(
        [ruff, "check", *options, "--target-version", "py311", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
