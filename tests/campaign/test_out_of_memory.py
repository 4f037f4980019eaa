"""The fuzz loop stops, with what it found, once the target has filled the
process: drawing the next case fails too (and Hypothesis may report that as a
FlakyStrategyDefinition raised during the MemoryError)."""

from __future__ import annotations

from asgifuzz._campaign.loop import _out_of_memory


def _raised_during(inner: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except type(inner):
            raise outer  # noqa: B904 (raised during, as Hypothesis does)
    except type(outer) as exc:
        return exc


def test_a_memory_error_under_another_is_seen() -> None:
    assert _out_of_memory(MemoryError())
    assert _out_of_memory(_raised_during(MemoryError(), RuntimeError("flaky")))
    assert _out_of_memory(ExceptionGroup("g", [MemoryError()]))


def test_other_errors_are_not_out_of_memory() -> None:
    assert not _out_of_memory(None)
    assert not _out_of_memory(_raised_during(ValueError(), RuntimeError("flaky")))
