"""The pytest plugin (registered by the ``pytest11`` entry point) and `given_cases`.

A test made by `given_cases` is a Hypothesis test over `asgifuzz.strategies.cases`,
parametrized over anyio's ``anyio_backend`` fixture (asyncio and trio, unless the
project's conftest narrows it). `asgifuzz.check` inside it uses that backend. A
failing test's shrunk cases are saved to the corpus (``--asgifuzz-corpus``,
default ``corpus/new``) and the terminal summary says where, with the command to
replay them, labelled ``yours``. A case that shows only Starlette's failures
(the same with each user layer swapped for Starlette's pass-through of its
family) passes `asgifuzz.check`; the summary lists those failures labelled
``upstream (Starlette)``, each saved (its smallest case, with the swapped one)
with the ``asgifuzz repro`` command of its Starlette-only script. Light at
import: pytest loads it in every run.
"""

from __future__ import annotations

import functools
import inspect
import shlex
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from asgifuzz._errors import UsageError
from asgifuzz._targets.specs import MiddlewareTarget, named_spec, scoped, used_by

if TYPE_CHECKING:
    from asgifuzz._oracles.verdict import InvariantViolation, Verdict

_MARK = "asgifuzz"
#: (test, the entry saved or None, the replay options, the failure signature)
_SAVED = pytest.StashKey[list[tuple[str, Path | None, str, str]]]()
#: Starlette's failures seen by a test's checks, and those saved per test:
#: (test, path or None, key, how many cases showed it).
_SEEN = pytest.StashKey["_Upstream"]()
_UPSTREAM = pytest.StashKey[list[tuple[str, Path | None, str, int]]]()
#: Each test's own targets (names are per test): test function -> registry.
_REGISTRIES: dict[object, tuple[dict[str, MiddlewareTarget], dict[str, Any]]] = {}


def given_cases(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a test taking a ``case`` argument: it runs once per drawn case.

    ``options`` go to `asgifuzz.strategies.cases` (``middleware=[...]``,
    ``app=...``, ``routes=...``, ``builtin=...``, ``headers=[...]``,
    ``cookies=[...]``, and strategies for the parts), except ``requests``: your
    request strategy (or its import spec, as ``requests`` in ``[tool.asgifuzz]``),
    checked to draw `asgifuzz.models.Request` values. Use Hypothesis'
    ``@settings`` and profiles as for any ``@given`` test::

        @asgifuzz.given_cases(middleware=[Timing, Auth], requests=my_requests())
        def test_stack(case):
            asgifuzz.check(case)
    """
    from hypothesis import given

    # Here too: the watchdog imports the oracles (Starlette).
    from asgifuzz._campaign.watchdog import Watchdog

    # Here, not at the top: pytest loads this plugin in every run, and the
    # strategies import Hypothesis and Starlette.
    from asgifuzz.strategies import cases

    # Here too (the same reason).
    from asgifuzz.strategies._user import user_requests

    if "requests" in options:
        if "request" in options:
            raise UsageError("given_cases: pass requests= or request=, not both")
        options["request"] = user_requests(options.pop("requests"))
    # Its own registry: two tests may name one class with different arguments.
    targets: tuple[dict[str, MiddlewareTarget], dict[str, Any]] = ({}, {})
    with scoped(targets):
        strategy = cases(**options)

    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        if "case" not in inspect.signature(test).parameters:
            raise UsageError(
                f"given_cases: {test.__qualname__} takes no 'case' argument; "
                "write def test_...(case): asgifuzz.check(case)"
            )
        dog = Watchdog()

        @functools.wraps(test)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            # The same wall-clock watchdog as `asgifuzz fuzz`, in this process:
            # a case that hangs it fails as hang:wall (no supervisor: a crash of
            # the process ends the test run).
            case = kwargs["case"]
            try:
                with scoped(targets), dog.armed():
                    result = test(*args, **kwargs)
            except Exception as exc:
                fault = dog.fault(case, ("asyncio",))
                if fault is not None:
                    _bound_shrinking(dog.shrink_budget)
                    raise dog.raising(fault) from exc
                raise
            fault = dog.fault(case, ("asyncio",))
            if fault is not None:
                _bound_shrinking(dog.shrink_budget)
                raise dog.raising(fault)
            return result

        wrapped = given(case=strategy)(guarded)
        wrapped = pytest.mark.usefixtures("anyio_backend")(wrapped)
        marked: Callable[..., Any] = getattr(pytest.mark, _MARK)(wrapped)
        _REGISTRIES[marked] = targets
        return marked

    return decorate


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asgifuzz")
    group.addoption(
        "--asgifuzz-corpus",
        metavar="DIR",
        default=None,
        help="where asgifuzz tests save the shrunk cases of their failures "
        "(default: the asgifuzz_corpus ini option, or corpus/new)",
    )
    parser.addini(
        "asgifuzz_corpus", "directory for asgifuzz's new corpus entries", default=""
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{_MARK}: a test made by asgifuzz.given_cases (asgifuzz plugin)"
    )
    config.stash[_SAVED] = []
    config.stash[_UPSTREAM] = []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(_MARK) is None:
        return
    if "anyio_backend" not in metafunc.fixturenames:
        return
    # Recent anyio parametrizes its own fixture over every installed backend;
    # older anyio returns "asyncio" only, and a project's conftest may choose.
    defs = metafunc._arg2fixturedefs.get("anyio_backend", ())
    anyio_default = bool(defs) and all(
        getattr(d.func, "__module__", "") == "anyio.pytest_plugin" and not d.params
        for d in defs
    )
    if anyio_default:
        metafunc.parametrize("anyio_backend", ["asyncio", "trio"], scope="module")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if item.get_closest_marker(_MARK) is None:
        return (yield)
    # Starlette: see given_cases.
    from asgifuzz._oracles.verdict import current_backends, upstream_seen

    funcargs = getattr(item, "funcargs", {})
    backend = funcargs.get("anyio_backend", "asyncio")
    name = backend if isinstance(backend, str) else backend[0]
    _warm_up(name)
    token = current_backends.set((name,))
    seen = item.stash[_SEEN] = _Upstream()
    seen_token = upstream_seen.set(seen)
    try:
        return (yield)
    finally:
        current_backends.reset(token)
        upstream_seen.reset(seen_token)
        _unbound_shrinking()


_WARM: set[str] = set()
_SHRINKING: list[int] = []  # Hypothesis's shrink time limit, while bounded


def _bound_shrinking(seconds: float) -> None:
    """Shrink this test's failures for ``seconds`` at most: a hang costs wall
    time per attempt. Hypothesis reads its (private) limit when shrinking
    starts, which comes after the first failure; the test's end restores it."""
    from hypothesis.internal.conjecture import engine

    if not _SHRINKING:
        _SHRINKING.append(engine.MAX_SHRINKING_SECONDS)
    engine.MAX_SHRINKING_SECONDS = min(engine.MAX_SHRINKING_SECONDS, int(seconds))


def _unbound_shrinking() -> None:
    if _SHRINKING:
        from hypothesis.internal.conjecture import engine

        engine.MAX_SHRINKING_SECONDS = _SHRINKING.pop()


def _warm_up(backend: str) -> None:
    """One run per backend before Hypothesis times any: the first run of a
    process imports and warms up the event loop, which can exceed Hypothesis'
    200 ms deadline and make it report "Unreliable test timings"."""
    if backend not in _WARM:
        # Starlette and the driver, as in given_cases; not `asgifuzz.run`, since
        # the package's lazy attributes import this module (an import cycle).
        from asgifuzz._driver.runner import run
        from asgifuzz.models import Case  # Starlette: see given_cases

        run(Case(), backend)
        _WARM.add(backend)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    marked = item.get_closest_marker(_MARK) is not None
    if call.when == "call" and call.excinfo is not None and marked:
        with scoped(_REGISTRIES.get(getattr(item, "obj", None), ({}, {}))):
            _save(item, call.excinfo.value)
    if call.when == "call" and marked and _SEEN in item.stash:
        with scoped(_REGISTRIES.get(getattr(item, "obj", None), ({}, {}))):
            item.stash[_SEEN].save(item)
    return report


def _violations(exc: BaseException) -> list[InvariantViolation]:
    # Starlette (through the verdict's driver): only when a test failed.
    from asgifuzz._oracles.verdict import InvariantViolation

    if isinstance(exc, InvariantViolation):
        return [exc]
    found = []
    for inner in getattr(exc, "exceptions", ()):
        found += _violations(inner)
    return found


def _save(item: pytest.Item, exc: BaseException) -> None:
    from asgifuzz._corpus.entries import save_finding  # Starlette: see given_cases

    config = item.config
    directory = _directory(config)
    for violation in _violations(exc):
        key = violation.key
        first = next((v for v in violation.violations if v.key == key), None)
        signature = first.signature if first is not None else key
        saved = save_finding(
            directory,
            key,
            violation.case,
            violation.backend,
            [f"[{v.key}] {v.message}" for v in violation.violations],
            signature,
            targets=used_by(violation.case),
        )
        config.stash[_SAVED].append(
            (item.nodeid, saved, _replay_options(violation), signature)
        )


def _directory(config: pytest.Config) -> Path:
    directory = Path(
        config.getoption("asgifuzz_corpus")
        or config.getini("asgifuzz_corpus")
        or "corpus/new"
    )
    return directory if directory.is_absolute() else config.rootpath / directory


class _Upstream:
    """Starlette's failures seen by one test's checks: the smallest case of
    each (by `Finding.ident`: signature and owner) and how many showed it."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[Verdict, int]] = {}

    def __call__(self, verdict: Verdict) -> None:
        # Each of these imports Starlette (through the oracles): only when needed.
        from asgifuzz._campaign.findings import ident  # Starlette: see above
        from asgifuzz._corpus.entries import case_size  # Starlette: see above
        from asgifuzz._oracles.failures import failure_of  # Starlette: see above

        failure = failure_of(verdict.elsewhere, tuple(verdict.outcomes))
        assert failure is not None  # check passes only verdicts with some
        name = ident(failure.signature, verdict.swapped)
        best, count = self.found.get(name, (verdict, 0))
        if case_size(verdict.case) < case_size(best.case):
            best = verdict
        self.found[name] = (best, count + 1)

    def save(self, item: pytest.Item) -> None:
        """Save each (labelled upstream: it did not fail the test), with its
        swapped case, for the terminal summary."""
        from asgifuzz._corpus.entries import save_finding  # Starlette: see above
        from asgifuzz._oracles.failures import failure_of  # Starlette: see above

        for verdict, count in self.found.values():
            failure = failure_of(verdict.elsewhere, tuple(verdict.outcomes))
            assert failure is not None
            saved = save_finding(
                _directory(item.config),
                failure.key,
                verdict.case,
                failure.backends[0],
                failure.messages,
                failure.signature,
                targets=used_by(verdict.case),
                swapped=verdict.swapped,
            )
            entry = (item.nodeid, saved, failure.key, count)
            item.config.stash[_UPSTREAM].append(entry)


def _replay_options(violation: InvariantViolation) -> str:
    parts = []
    for kind, named in used_by(violation.case).items():
        for name, spec in named.items():
            option = named_spec(name, spec)
            parts.append(f"--{kind} {shlex.quote(option) if spec else name + '=?'}")
    return " ".join(parts)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    saved = config.stash.get(_SAVED, [])
    upstream = config.stash.get(_UPSTREAM, [])
    if not saved and not upstream:
        return
    terminalreporter.section("asgifuzz")
    for nodeid, path, options, signature in saved:
        if path is None or not path.exists():
            # Already saved, or replaced since by a later test's smaller case.
            later = [p for _, p, _, s in saved if s == signature and p and p.exists()]
            where = f": {_relative(later[-1], config.rootpath)}" if later else ""
            terminalreporter.write_line(
                f"{nodeid}: a smaller case with the same signature is saved{where}"
            )
            continue
        shown = _relative(path, config.rootpath)
        # A failing check is the user's layers' (Starlette's failures pass it).
        owner = ", yours" if options else ""
        terminalreporter.write_line(f"{nodeid}: new corpus entry {shown}{owner}")
        command = f"asgifuzz replay {shown} --trace {options}".rstrip()
        terminalreporter.write_line(f"  replay: {command}")
    for nodeid, path, key, count in upstream:
        terminalreporter.write_line(
            f"{nodeid}: {key}, upstream (Starlette), in {count} case(s) that passed "
            "the check: it shows the same way with Starlette's own pass-through in "
            "place of your layers"
        )
        if path is None:
            terminalreporter.write_line("  a smaller case of it is already saved")
            continue
        shown = _relative(path, config.rootpath)
        terminalreporter.write_line(
            f"  saved: {shown}; reproducer (Starlette only): asgifuzz repro {shown}"
        )
    if any("=?" in options for _, _, options, _ in saved):
        terminalreporter.write_line(
            "  (=?: a middleware defined where it cannot be imported from; move it "
            "to a module to replay it from the command line)"
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
