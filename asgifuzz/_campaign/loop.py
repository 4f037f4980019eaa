"""The fuzz loop: Hypothesis rounds until the time budget is spent.

Each round is one ``@given`` run with its own seed. A failure is shrunk by
Hypothesis and kept as a `Finding`; later rounds treat a failure whose key
(``invariant:tag``) is already known as a pass, so the budget goes to new bugs
instead of re-shrinking old ones.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy

from asgifuzz._campaign.watchdog import Fault, StopShrinking, Watchdog, memory_error
from asgifuzz._corpus.known import split_known
from asgifuzz._oracles.registry import rank
from asgifuzz._oracles.verdict import (
    InvariantViolation,
    Verdict,
    judge,
    violation_class,
)
from asgifuzz._targets.config import TargetConfig
from asgifuzz.models import Case, case_to_data
from asgifuzz.strategies import cases
from asgifuzz.strategies._user import user_requests

#: The first round's size; later rounds are sized from the measured rate.
FIRST_ROUND = 50


@dataclass
class Finding:
    """One distinct failure, with its shrunk case."""

    key: str
    backend: str
    messages: list[str]
    case: Case
    flaky: bool = False
    signature: str = ""
    #: Seconds into the run and cases run when the failure was first seen.
    first_seen_s: float = 0.0
    first_seen_cases: int = 0
    #: The corpus entry written for it (set by the campaign; None: not saved).
    saved: Path | None = None
    #: For a fault (hang, crash, memory): the stack of every thread when caught.
    stack: str = ""

    def to_data(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "signature": self.signature or self.key,
            "backend": self.backend,
            "messages": self.messages,
            "flaky": self.flaky,
            "first_seen_s": round(self.first_seen_s, 3),
            "first_seen_cases": self.first_seen_cases,
            "case": case_to_data(self.case),
            **({"stack": self.stack} if self.stack else {}),
        }


@dataclass
class FuzzReport:
    """What a fuzz run did and found."""

    backends: tuple[str, ...]
    cases: int = 0
    elapsed: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    #: Runs per failure key of a known upstream bug (expected, not findings).
    upstream: Counter[str] = field(default_factory=Counter)
    #: Stopped early by Ctrl-C (or by the parent of a worker).
    interrupted: bool = False
    #: The signal that stopped it (SIGINT or SIGTERM; 0: none or unknown).
    signal: int = 0
    #: The report files the campaign wrote (``junit``, ``report`` and its plot).
    written: list[Path] = field(default_factory=list)

    @property
    def cases_per_second(self) -> float:
        return self.cases / self.elapsed if self.elapsed else 0.0

    def to_data(self) -> dict[str, Any]:
        return {
            "backends": list(self.backends),
            "cases": self.cases,
            "elapsed_s": round(self.elapsed, 3),
            "cases_per_s": round(self.cases_per_second, 1),
            "outcomes": dict(sorted(self.outcomes.items())),
            "findings": [f.to_data() for f in self.findings],
            "interrupted": self.interrupted,
            "signal": self.signal,
            "known_upstream": dict(sorted(self.upstream.items())),
        }


def outcome_kind(verdict: Verdict, backend: str) -> str:
    """A coarse label for one run, for the outcome counts."""
    o = verdict.outcomes[backend]
    if verdict.violations.get(backend):
        return "violation"
    if o.hung:
        return "hang"
    if o.recorder.disconnected is not None:
        return "disconnect"
    if o.escaped is not None:
        return "app-exception"
    return "response"


def strategy_for(targets: TargetConfig | None) -> SearchStrategy[Case] | None:
    """The cases of the user's targets (imported and allowed now), or None where
    there are none: `fuzz` then draws the built-in models."""
    if targets is None or targets.empty:
        return None
    mws, app = targets.allow()
    headers, cookies = targets.extras()
    return cases(
        middleware=mws or None,
        app=app,
        builtin=targets.builtin,
        lifespan=targets.lifespan,
        request=user_requests(targets.requests) if targets.requests else None,
        headers=headers,
        cookies=cookies,
    )


def _out_of_memory(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from or during (Hypothesis
    raises FlakyStrategyDefinition during a draw's MemoryError), is one."""
    seen = 0
    while exc is not None and seen < 10:
        if memory_error(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class _OutOfTime(BaseException):
    """Past the time budget, a case repeated a known fault: stop the run."""


def _violations(exc: BaseException) -> list[tuple[InvariantViolation, bool]]:
    """The invariant violations inside whatever Hypothesis raised (flaky or not)."""
    if isinstance(exc, StopShrinking):
        return [(f, False) for f in exc.faults]
    flaky = isinstance(exc, Flaky)
    if isinstance(exc, InvariantViolation):
        return [(exc, flaky)]
    found = []
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found += [(v, f or flaky) for v, f in _violations(inner)]
    if not found and exc.__cause__ is not None:
        found = [(v, True) for v, _ in _violations(exc.__cause__)]
    return found


def fuzz(
    *,
    max_time: float = 60.0,
    backends: tuple[str, ...] = ("asyncio", "trio"),
    seed_: int = 0,
    database: Any = None,
    strategy: Any = None,
    known_upstream: Mapping[str, str] | None = None,
    on_case: Callable[[FuzzReport, Collection[str]], None] | None = None,
    watchdog: Watchdog | None = None,
) -> FuzzReport:
    """Generate, run and judge cases for ``max_time`` seconds (plus shrinking).

    ``database`` is a Hypothesis example database, or None for none;
    ``strategy`` draws the cases (default: `asgifuzz.strategies.cases()`);
    ``known_upstream`` maps the failure keys of known upstream bugs to their
    corpus entries: they are counted in ``report.upstream``, not reported;
    ``on_case(report, seen)`` is called after each case with the failure keys
    seen so far (live progress). Ctrl-C ends the run early, with what it did
    (``interrupted``). ``watchdog`` runs each case under a wall-clock limit
    (`asgifuzz._campaign.watchdog`): a hang or a memory error is a `Fault`,
    shrunk within the watchdog's budget; once past ``max_time``, a case that
    repeats a known fault ends the run (each costs the wall-clock limit).
    """
    report = FuzzReport(backends=backends)
    known: set[str] = set()
    first_seen: dict[str, tuple[float, int]] = {}
    start = time.perf_counter()
    deadline = start + max_time
    round_size, round_no = FIRST_ROUND, 0
    while time.perf_counter() < deadline:
        phases = [Phase.explicit, Phase.generate, Phase.shrink]
        if round_no == 0:
            phases.insert(1, Phase.reuse)

        @settings(
            max_examples=round_size,
            deadline=None,
            database=database,
            phases=phases,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=True,
            print_blob=False,
        )
        @seed(seed_ * 1_000_003 + round_no)
        @given(case=strategy if strategy is not None else cases())
        def one(case: Case) -> None:
            if watchdog is None:
                verdict = judge(case, backends)
            else:
                got, fault = watchdog.judge(case, backends, judge)
                if fault is not None:
                    faulted(fault)
                    return
                assert got is not None  # no fault: a verdict
                verdict = got
            if known_upstream:
                verdict.violations, hits = split_known(
                    verdict.violations, known_upstream
                )
                report.upstream.update(hits)
            report.cases += 1
            for backend in backends:
                report.outcomes[f"{backend}:{outcome_kind(verdict, backend)}"] += 1
            if on_case is not None:
                on_case(report, first_seen.keys())
            fresh = [
                (b, v)
                for b, vs in verdict.violations.items()
                for v in vs
                if v.key not in known
            ]
            if fresh:
                fresh.sort(key=lambda bv: rank(bv[1].invariant))
                backend, first = fresh[0]
                for _, v in fresh:
                    first_seen.setdefault(
                        v.key, (time.perf_counter() - start, report.cases)
                    )
                raise violation_class(first.key)([v for _, v in fresh], case, backend)

        def faulted(fault: Fault) -> None:
            report.cases += 1
            report.outcomes[f"{fault.backend}:{fault.key.replace(':', '-')}"] += 1
            if on_case is not None:
                on_case(report, first_seen.keys())
            if fault.key not in known:
                first_seen.setdefault(
                    fault.key, (time.perf_counter() - start, report.cases)
                )
                assert watchdog is not None  # only a watchdog makes faults
                raise watchdog.raising(fault)
            if time.perf_counter() > deadline:
                raise _OutOfTime

        # Hypothesis names the test after the function; keep it stable for the DB.
        one.__qualname__ = one.__name__ = "asgifuzz_fuzz"
        round_start, before = time.perf_counter(), report.cases
        try:
            one()
        except KeyboardInterrupt:
            report.interrupted = True
            break
        except _OutOfTime:
            break
        except (Exception, StopShrinking) as exc:
            for violation, flaky in _violations(exc):
                if violation.key in known:
                    continue
                known.add(violation.key)
                report.findings.append(
                    Finding(
                        key=violation.key,
                        backend=violation.backend,
                        messages=[
                            f"[{v.key}] {v.message}" for v in violation.violations
                        ],
                        case=violation.case,
                        flaky=flaky,
                        signature=next(
                            (
                                v.signature
                                for v in violation.violations
                                if v.key == violation.key
                            ),
                            violation.key,
                        ),
                        first_seen_s=first_seen.get(violation.key, (0.0, 0))[0],
                        first_seen_cases=first_seen.get(violation.key, (0.0, 0))[1],
                        stack=getattr(violation, "stack", ""),
                    )
                )
            if "resource:memory" in known and _out_of_memory(exc):
                # The target filled the process (a leak, found): drawing the
                # next case failed too. Stop with what was found.
                break
            if not _violations(exc):
                raise
        finally:
            if watchdog is not None:
                watchdog.round_done()
        spent = time.perf_counter() - round_start
        rate = (report.cases - before) / spent if spent > 0 else 100.0
        left = deadline - time.perf_counter()
        round_size = max(10, min(2000, int(rate * min(left, 5.0))))
        round_no += 1
    report.elapsed = time.perf_counter() - start
    return report
