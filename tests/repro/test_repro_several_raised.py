"""A reproducer judges what escaped as I8 does: of several exceptions raised on
purpose, one winning or a group of them is no difference."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_repro import _agrees, run_script

from asgifuzz._repro.script import render_repro
from asgifuzz.models import Case, Endpoint, Layer, Stack

#: The campaign's I8:escaped (each package swapped): on trio the dispatch's and
#: the stream's exceptions come out grouped without the pass-through layer, the
#: dispatch's alone with it.
CASE = Case(
    stack=Stack((Layer("bhm.raise_after"), Layer("bhm.passthrough"))),
    endpoint=Endpoint("raise_streaming", chunks=0),
)


def test_the_script_agrees_with_asgifuzz(backend: str, tmp_path: Path) -> None:
    _agrees(CASE, backend, tmp_path)


def test_the_script_names_what_escaped_alike(tmp_path: Path) -> None:
    done = run_script(tmp_path, render_repro(CASE, "I8:escaped"), "trio")
    if "'escaped': 'some of the exceptions raised on purpose'" not in done.stdout:
        pytest.skip("this release lets no several exceptions out here")
    assert done.returncode == 0, done.stdout
    # One raised alone is still named by its type.
    single = Case(stack=Stack((Layer("bhm.passthrough"),)), endpoint=Endpoint("raise"))
    done = run_script(tmp_path, render_repro(single, "I8:escaped"), "trio")
    assert "'escaped': 'Boom'" in done.stdout
