"""The fuzz loop: Hypothesis rounds until the time budget is spent.

Each round is one ``@given`` run with its own seed. A failing case raises one
exception class per failure signature (`failed`), so Hypothesis, which tells
failures apart by exception type, shrinks each distinct bug on its own
(``report_multiple_bugs``) and two bugs with one key are both reported. The
rounds of the budget only generate, each up to its first new failure, kept as
drawn; after the budget each is shrunk (`asgifuzz._campaign.deferred`), so no
shrinking holds up the search. The draws take no constants from the modules
the process happens to have imported (`asgifuzz._campaign.constants`), so a
seed draws the same cases in any process. Later rounds treat a case whose failure
signature was already reported as a pass, unless another of its signatures is
new (`failing.Masking`: a second bug that the reported one masks). A user target that fails every one
of the first cases reaching it ends the run early, with one `Misconfiguration`
instead of its findings (`asgifuzz._campaign.misconfig`).

Each drawn case whose client never hangs up is run again with the client gone
at each of up to 16 points of its transcript (`asgifuzz._campaign.points`); a
failing one's finding is the point's case. `tally` counts the runs apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.database import ExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy

from asgifuzz._campaign.constants import without_local_constants
from asgifuzz._campaign.deferred import Current, Group, Recording, to_shrink
from asgifuzz._campaign.failing import CaseFailed, Masking, failed
from asgifuzz._campaign.findings import (
    Finding,
    FuzzReport,
    attributed,
    ident,
    idents,
    merge_findings,
    without,
)
from asgifuzz._campaign.misconfig import Misconfiguration, Watch
from asgifuzz._campaign.points import variants
from asgifuzz._campaign.tally import Round
from asgifuzz._campaign.task import Search
from asgifuzz._campaign.watchdog import Fault, StopShrinking, Watchdog, memory_error
from asgifuzz._corpus.known import KnownBugs
from asgifuzz._oracles.failures import Failure, failure_of, short_signature
from asgifuzz._oracles.verdict import (
    InvariantViolation,
    Verdict,
    judge,
)
from asgifuzz._targets.config import TargetConfig
from asgifuzz.models import Case
from asgifuzz.strategies import cases
from asgifuzz.strategies._independent import fresh_draws, register
from asgifuzz.strategies._user import user_requests

__all__ = ["Finding", "FuzzReport", "fuzz", "outcome_kind", "strategy_for"]

#: The first round's size; later rounds are sized from the measured rate.
FIRST_ROUND = 50
FIXED_ROUND = 200  # with max_cases: rounds of this size, not of a rate


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
    if targets is None or targets.plain:
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
        scopes=targets.scope_choice,
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


class _Misconfigured(BaseException):
    """A user target failed every case so far: stop the run (a
    ``BaseException``, so that Hypothesis lets it by)."""

    def __init__(self, found: Misconfiguration) -> None:
        super().__init__(found.target)
        self.found = found


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


def _failure(exc: InvariantViolation) -> Failure | None:
    if isinstance(exc, CaseFailed):
        return exc.failure
    return failure_of({exc.backend: exc.violations}, (exc.backend,))


def fuzz(
    *,
    max_time: float = 60.0,
    max_cases: int | None = None,
    backends: tuple[str, ...] = ("asyncio", "trio"),
    seed_: int = 0,
    database: Any = None,
    strategy: Any = None,
    known_upstream: KnownBugs | None = None,
    on_case: Callable[[FuzzReport, Collection[str]], None] | None = None,
    watchdog: Watchdog | None = None,
    search: Search = Search(),  # noqa: B008 (frozen)
) -> FuzzReport:
    """Generate, run and judge cases for ``max_time`` seconds (plus shrinking).

    ``database`` is a Hypothesis example database, or None for none;
    ``strategy`` draws the cases (default: `asgifuzz.strategies.cases()`);
    ``known_upstream`` labels the findings that match its corpus entries
    (`Finding.label`); ``on_case(report, seen)`` is called after each case with
    the failures seen so far, shrunk or not (live progress). Ctrl-C ends the
    run early, with what it did (``interrupted``). ``watchdog`` runs each case
    under a wall-clock limit (`asgifuzz._campaign.watchdog`): a hang or a
    memory error is a `Fault`, shrunk within the watchdog's budget; once past
    ``max_time``, a case that repeats a known fault ends the run (each costs
    the wall-clock limit). A user target that fails each of the first cases
    reaching it ends the run too (``misconfigured``). ``search`` sets the
    disconnect points (`Search`). ``max_cases`` also ends generation after that
    many generated cases, in rounds of a size that does not depend on the
    machine's speed: a seed then draws the same cases everywhere.
    """
    report = FuzzReport(backends=backends)
    watch = Watch()
    reported: set[str] = set()  # the signatures of the findings so far
    masking = Masking()  # failures kept for a signature not their headline
    first_seen: dict[str, tuple[float, int]] = {}
    heads: dict[str, None] = {}  # the failures seen so far, for on_case
    start = time.perf_counter()
    deadline = start + max_time
    round_size, round_no = min(FIRST_ROUND, max_cases or FIRST_ROUND), 0
    rounds: list[Round] = []  # the current one (a list: the closures see it)
    recording = Recording(database)
    groups: list[Group] = []  # drawn failures, to shrink after the budget
    shrinking: list[Group] | None = None  # once past the budget
    cur = Current()  # the round's group and the signatures it passes
    while True:
        if shrinking is None and (
            time.perf_counter() >= deadline
            or (max_cases is not None and report.cases >= max_cases)
        ):
            shrinking = to_shrink(groups, max_time)
        if shrinking is not None and not shrinking:
            break
        group = shrinking.pop(0) if shrinking is not None else None
        cur.group, cur.skip = group, reported
        db: ExampleDatabase = recording
        if group is None:  # generate only: shrinking waits (`deferred`)
            phases = [Phase.explicit, Phase.generate]
            if round_no == 0:
                phases.insert(1, Phase.reuse)
        else:
            phases, db = [Phase.reuse, Phase.shrink], group.database(recording)
            cur.skip = reported - group.idents
            for fault in group.faults:
                assert watchdog is not None  # only a watchdog makes faults
                watchdog.raising(fault)
        if group is not None:  # Hypothesis replays up to max_examples of them
            round_size = max(round_size, len(group.values))
        rounds[:] = [Round(report, round_size, shrinking=group is not None)]

        def judged(case: Case) -> tuple[Verdict | None, Fault | None]:
            if cur.group is not None and cur.group.spent():
                raise StopShrinking(list(cur.group.best.values()))
            if watchdog is None:
                return judge(case, backends), None
            return watchdog.judge(case, backends, judge)

        def seen(failure: Failure | None, swapped: Case | None) -> None:
            """Note when a failure was first seen (counted in generated cases)."""
            if failure is None:
                return
            now = (time.perf_counter() - start, rounds[0].counting())
            for signature in failure.signatures:
                first_seen.setdefault(ident(signature, swapped), now)
            heads.setdefault(short_signature(failure.signature))

        @settings(
            max_examples=round_size,
            deadline=None,
            database=db,
            phases=phases,
            # ASGIFUZZ_DRAWS=fresh: each generated case drawn afresh (shrinking
            # and replays on Hypothesis's own backend).
            backend=register() if group is None and fresh_draws() else "hypothesis",
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=True,
            print_blob=False,
        )
        @seed(seed_ * 1_000_003 + round_no)
        @given(case=strategy if strategy is not None else cases())
        def one(case: Case) -> None:
            this = rounds[0]
            started, counted = time.perf_counter(), [0]
            kinds: tuple[str, ...] = ()
            try:
                verdict, fault = judged(case)
                if fault is not None:
                    kinds = (f"{fault.backend}:{fault.key.replace(':', '-')}",)
                    faulted(fault)
                    return
                assert verdict is not None  # no fault: a verdict
                kinds = tuple(f"{b}:{outcome_kind(verdict, b)}" for b in backends)
                misconfigured = watch.observe(case, verdict)
                if misconfigured is not None:
                    raise _Misconfigured(misconfigured)
                failure, swapped = attributed(verdict, backends)
                seen(failure, swapped)
                failure = masking.keep(failure, swapped, cur.skip)
                if failure is not None:
                    this.failing = this.failing or []
                    raise kept(failed(failure, case, swapped))
                outcome = verdict.outcomes[backends[0]]
                for variant in variants(case, outcome, search.points, this.failing):
                    counted[0] += 1
                    got, fault = judged(variant)
                    if fault is not None:
                        faulted(fault)
                        continue
                    assert got is not None  # no fault: a verdict
                    failure, swapped = attributed(got, backends)
                    seen(failure, swapped)
                    failure = masking.keep(failure, swapped, cur.skip)
                    if failure is not None:
                        this.failing = [*(this.failing or ()), variant.client]
                        raise kept(failed(failure, variant, swapped))
            finally:
                rounds[0].call(kinds, counted[0], started)
                if on_case is not None:
                    on_case(report, heads.keys())

        def kept(exc: CaseFailed) -> CaseFailed:
            if cur.group is not None:  # the smallest so far: Hypothesis shrinks
                cur.group.best[ident(exc.failure.signature, exc.swapped)] = exc
            return exc

        def faulted(fault: Fault) -> None:
            heads.setdefault(fault.key)
            if fault.key not in cur.skip:  # a fault's signature is its key
                first_seen.setdefault(
                    fault.key, (time.perf_counter() - start, rounds[0].counting())
                )
                assert watchdog is not None  # only a watchdog makes faults
                raise watchdog.raising(fault)
            if time.perf_counter() > deadline:
                raise _OutOfTime

        # Hypothesis names the test after the function; keep it stable for the DB.
        one.__qualname__ = one.__name__ = "asgifuzz_fuzz"
        round_start, before = time.perf_counter(), report.cases
        try:
            with rounds[0].collecting(), without_local_constants():
                one()
        except KeyboardInterrupt:
            report.interrupted = True
            break
        except _OutOfTime:  # a group it stops stays as drawn
            if shrinking is None:
                shrinking = to_shrink(groups, max_time)
        except _Misconfigured as exc:
            report.misconfigured.append(exc.found)
            report.findings = without(report.findings, exc.found.target)
            break
        except (Exception, StopShrinking) as exc:
            found = _violations(exc)
            fresh, dropped = [], set()
            for violation, flaky in found:
                failure = _failure(violation)
                if failure is None:
                    continue
                swapped = getattr(violation, "swapped", None)
                if group is not None and masking.symptom(failure, swapped, reported):
                    # Shrunk, still headlined by a reported bug: its symptom.
                    name = ident(failure.signature, swapped)
                    if masking.drop(name):
                        dropped.add(name)
                    continue
                masking.found(failure, swapped)
                finding = Finding.of(
                    failure,
                    violation.case,
                    flaky=flaky,
                    first_seen=first_seen.get(
                        ident(failure.signature, swapped), (0.0, 0)
                    ),
                    stack=getattr(violation, "stack", ""),
                    swapped=swapped,
                )
                finding.label(known_upstream, masked=failure.masked)
                fresh.append(finding)
            if dropped:  # the finding kept as drawn goes too
                reported.difference_update(dropped)
                report.findings = [f for f in report.findings if f.ident not in dropped]
            report.findings = merge_findings([*report.findings, *fresh])
            masking.listing(report.findings)
            taken = recording.take()
            if group is None and fresh and taken is not None:
                faults = [v for v, _ in found if isinstance(v, Fault)]
                groups.append(Group.of(taken, fresh, faults))
            reported.update(idents(report.findings))
            if any(f.key == "resource:memory" for f in report.findings) and (
                _out_of_memory(exc)
            ):
                # The target filled the process (a leak, found): drawing the
                # next case failed too. Stop with what was found.
                break
            if not found and not isinstance(exc, StopShrinking):
                raise
        finally:
            recording.take()  # the round's other saves are no group's
            rounds[0].settle(first_seen)
            if watchdog is not None:
                watchdog.round_done()
        spent = time.perf_counter() - round_start
        rate = (report.cases - before) / spent if spent > 0 else 100.0
        left = deadline - time.perf_counter()
        round_size = max(10, min(2000, int(rate * min(left, 5.0))))
        if max_cases is not None:  # the same rounds on any machine
            round_size = max(1, min(FIXED_ROUND, max_cases - report.cases))
        round_no += 1
    report.elapsed = time.perf_counter() - start
    return report
