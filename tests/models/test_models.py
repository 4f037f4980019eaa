from __future__ import annotations

import json

import pytest
from hypothesis import given

from asgifuzz._errors import CaseFormatError
from asgifuzz.models import (
    FORMAT_VERSION,
    Case,
    Endpoint,
    Layer,
    Request,
    Stack,
    build,
    case_from_data,
    case_to_data,
)
from asgifuzz.models._record import Recorder
from asgifuzz.strategies import cases


@given(cases())
def test_json_round_trip(case: Case) -> None:
    text = case.to_json()
    assert Case.from_json(text) == case
    assert json.loads(text)["format"] == FORMAT_VERSION


def test_json_is_canonical() -> None:
    case = Case(request=Request(body=(b"\x00\xff", b"ab")))
    text = case.to_json()
    assert text == Case.from_json(text).to_json()
    assert list(json.loads(text)) == sorted(json.loads(text))


def _data() -> dict[str, object]:
    return case_to_data(Case(stack=Stack(layers=(Layer("bhm.passthrough"),))))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda d: d["stack"]["layers"][0].update(kind="os.system"),
            "stack.layers[0].kind",
        ),
        (
            lambda d: d["stack"]["layers"][0].update(kind="mypkg.mw:Evil"),
            "stack.layers[0].kind",
        ),
        (lambda d: d.update(format=99), "format"),
        (lambda d: d.update(extra=1), "$"),
        (lambda d: d["endpoint"].update(chunks="3"), "endpoint.chunks"),
        (lambda d: d["endpoint"].update(chunks=True), "endpoint.chunks"),
        (lambda d: d["request"].update(body="abc"), "request.body"),
        (lambda d: d["request"].update(body=["\u0100"]), "request.body[0]"),
        (lambda d: d["request"].update(body=[1]), "request.body[0]"),
        (lambda d: d["request"].update(body=["a", [{"x": 1}]]), "request.body[1][0]"),
        (
            lambda d: d["request"].update(body=[[{"repeat": "", "times": 2}]]),
            "request.body[0][0].repeat",
        ),
        (
            lambda d: d["request"].update(body=[[{"repeat": "a", "times": 0}]]),
            "request.body[0][0].times",
        ),
        (
            lambda d: d["request"].update(body=[[{"repeat": "ab", "times": 5 << 20}]]),
            "request.body[0][0].times",
        ),
        (
            lambda d: d["request"].update(
                body=[[{"repeat": "a", "times": 5 << 20}]] * 2
            ),
            "request.body[1][0].times",
        ),
        (lambda d: d["endpoint"].update(size=-1), "endpoint.size"),
        (lambda d: d["endpoint"].update(size=None), "endpoint.size"),
        (lambda d: d["endpoint"].update(compressible=1), "endpoint.compressible"),
        (lambda d: d["request"].update(path="x"), "request.path"),
        (lambda d: d["request"].update(headers=[["a"]]), "request.headers"),
        (lambda d: d["client"].update(at=-1), "client.at"),
        (lambda d: d["server"].update(name="gunicorn"), "server.name"),
        (lambda d: d.update(stack=[]), "stack"),
        (
            lambda d: d["stack"]["layers"][0].update(pauses=[1]),
            "stack.layers[0].pauses",
        ),
    ],
)
def test_hostile_case_data_is_refused_naming_the_field(
    mutate: object, field: str
) -> None:
    data = _data()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(CaseFormatError, match=rf"'{__import__('re').escape(field)}'"):
        case_from_data(data, source="x.json")


def test_bad_json_names_the_file() -> None:
    with pytest.raises(CaseFormatError, match=r"^broken\.json: not valid JSON"):
        Case.from_json('{"format": 1,', source="broken.json")


def test_case_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="must be an object"):
        case_from_data([], source="list.json")


@pytest.mark.parametrize("mode", ["starlette", "wrap"])
def test_build_names_every_boundary(mode: str) -> None:
    rec = Recorder()
    layers = (
        Layer("bhm.passthrough"),
        Layer("asgi.add_header"),
        Layer("starlette.gzip"),
    )
    build(Case(stack=Stack(layers=layers, mode=mode), endpoint=Endpoint()), rec)
    assert rec.boundaries[-1] == "endpoint"
    assert [b for b in rec.boundaries if b.startswith("layer")] == [
        "layer 0 (bhm.passthrough)",
        "layer 1 (asgi.add_header)",
        "layer 2 (starlette.gzip)",
    ]
    assert len(rec.boundaries) == len(layers) + (3 if mode == "starlette" else 2)
