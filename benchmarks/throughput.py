"""Throughput: cases per second of asgifuzz's pipeline against its ceiling.

Every mode draws the same cases (the same Hypothesis strategy, `cases()`, the
same seeds and the same settings: generation only, no example database, as
``fuzz --no-database`` generates) and does something different with each, per
backend:

- ``generate``: nothing. Hypothesis alone, an empty test body: the ceiling,
  since the pipeline cannot draw its cases faster than Hypothesis does. The
  headline is full / Hypothesis-alone.
- ``call``: a reference, not a bound: builds the app
  (`asgifuzz.models.build`) and calls it once with a minimal receive/send (the
  body in one message; ``http.disconnect`` once the response is complete) on a
  fresh event loop per case. The loops have virtual clocks (asyncio's
  `VirtualTimeLoop`, trio's ``MockClock``) so the models' virtual sleeps cost
  nothing, and a 60 s virtual limit ends a hang; asgifuzz's ordered-set patch
  of anyio is taken out for this mode. (Called ``ceiling`` before issue 14:
  the full pipeline beat it, so it bounded nothing.)
- ``full``: asgifuzz's pipeline: `asgifuzz.judge` on that backend (the
  driver's run with its server profile, disconnect schedule, recorder, warning
  and leak capture, every invariant, and I8's second run where it applies).
- ``httpx``: the app through ``httpx.AsyncClient(transport=ASGITransport(app))``.
- ``testclient``: the app through Starlette's ``TestClient`` (a portal per case).

httpx and TestClient get the same virtual-time loops and 60 s limit as the
bare call (without them a streaming case sleeps real seconds and a hang never
ends). Threads pause the virtual clock in every mode (`blocking_threads`).

The modes run side by side, in alternating rounds: each repeat runs every mode
on every backend once, in the opposite order from the repeat before (so a
drift in the machine's load weighs on every mode alike), and the ratio full /
Hypothesis-alone is the median of the repeats' own ratios (each from one
round's pair of runs on the same cases).

    python benchmarks/throughput.py [--examples 600] [--repeat 3] [--seconds S]
        [--modes generate,call,full,httpx,testclient] [--json PATH] [--markdown PATH]

Prints a table of cases/s (the median over the repeats) and full /
Hypothesis-alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import selectors
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The sibling module, and asgifuzz from this checkout when it is not installed.
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import _machine  # noqa: E402
import anyio  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from asgifuzz import judge  # noqa: E402
from asgifuzz._driver import determinism as _determinism  # noqa: E402
from asgifuzz._driver.vtime import (  # noqa: E402
    VirtualTimeLoop,
    _VirtualSelector,
    blocking_threads,
)
from asgifuzz._types import ASGIApp, Message  # noqa: E402
from asgifuzz.models import Case, build  # noqa: E402
from asgifuzz.models._record import Recorder  # noqa: E402
from asgifuzz.strategies import cases  # noqa: E402

BACKENDS = ("asyncio", "trio")
MODES = ("generate", "call", "full", "httpx", "testclient")
LIMIT = 60.0  # virtual seconds before a hang is cut short (the driver's LIMIT)
Body = Callable[[Case, str], bool]  # whether the server got a status


class _PortalSelector(_VirtualSelector):
    """Jumps the clock to the next timer, but waits for real when there is none."""

    def idle(
        self, events: list[tuple[selectors.SelectorKey, int]]
    ) -> list[tuple[selectors.SelectorKey, int]]:
        # idle: a call from the test's thread will wake it
        return selectors.DefaultSelector.select(self, None)


class PortalTimeLoop(VirtualTimeLoop):
    """Virtual time for a loop in a portal thread (TestClient's).

    `VirtualTimeLoop` takes "nothing to do, no timer" for a deadlock; a portal's
    loop is then waiting for the next call from another thread, so this one
    blocks for real then, and jumps to the next timer otherwise (during a
    request the app runs inside the portal without waiting on other threads).
    """

    selector_class = _PortalSelector


def _backend_options(backend: str) -> dict[str, Any]:
    if backend == "asyncio":
        return {"loop_factory": PortalTimeLoop}
    import trio.testing

    return {"clock": trio.testing.MockClock(autojump_threshold=0)}


def _run_loop(backend: str, main: Callable[[], Any]) -> None:
    """``main`` on a fresh event loop of ``backend``, with a virtual clock."""
    if backend == "asyncio":
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(main())
    else:
        import trio
        import trio.testing

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def _limited(app: ASGIApp) -> ASGIApp:
    async def limited(scope: Any, receive: Any, send: Any) -> None:
        with anyio.move_on_after(LIMIT):
            await app(scope, receive, send)

    return limited


def _scope(case: Case) -> dict[str, Any]:
    req = case.request
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": req.scheme,
        "path": req.path,
        "raw_path": req.path.encode(),
        "root_path": "",
        "query_string": req.query.encode("latin-1"),
        "headers": [(b"host", b"testserver")]
        + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in req.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def generate(case: Case, backend: str) -> bool:
    """Nothing: what Hypothesis costs alone (the ceiling)."""
    return False


def call(case: Case, backend: str) -> bool:
    """Build the app and call it once with a minimal receive/send (a reference)."""
    app = build(case, Recorder())
    status: list[int] = []

    async def main() -> None:
        done = anyio.Event()
        body = [{"type": "http.request", "body": case.request.body_bytes}]

        async def receive() -> Message:
            if body:
                return body.pop()
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get(
                "more_body", False
            ):
                done.set()

        # The app's own exception is not the bare call's business.
        with anyio.move_on_after(LIMIT), contextlib.suppress(Exception):
            await app(_scope(case), receive, send)

    _run_loop(backend, main)
    return bool(status)


def full(case: Case, backend: str) -> bool:
    """asgifuzz's pipeline on one backend: run, judge every invariant (and I8)."""
    verdict = judge(case, (backend,))
    return verdict.outcomes[backend].response.status is not None


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        import httpx2 as httpx  # type: ignore[import-not-found, no-redef]
    return httpx


def via_httpx(case: Case, backend: str) -> bool:
    """The app through httpx's ``ASGITransport``, on a fresh loop per case."""
    httpx = _httpx()
    app = _limited(build(case, Recorder()))
    req = case.request
    status: list[int] = []

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"{req.scheme}://testserver"
        ) as client:
            with contextlib.suppress(Exception):
                response = await client.request(
                    req.method,
                    req.path + (f"?{req.query}" if req.query else ""),
                    headers=list(req.headers),
                    content=req.body_bytes,
                )
                status.append(response.status_code)

    _run_loop(backend, main)
    return bool(status)


def via_testclient(case: Case, backend: str) -> bool:
    """The app through Starlette's ``TestClient`` (a blocking portal per request)."""
    from starlette.testclient import TestClient

    app = _limited(build(case, Recorder()))
    req = case.request
    client = TestClient(
        app,
        base_url=f"{req.scheme}://testserver",
        raise_server_exceptions=False,
        backend=backend,
        backend_options=_backend_options(backend),
    )
    try:
        response = client.request(
            req.method,
            req.path + (f"?{req.query}" if req.query else ""),
            headers=list(req.headers),
            content=req.body_bytes,
        )
    except Exception:
        return False
    return response.status_code is not None


BODIES: dict[str, Body] = {
    "generate": generate,
    "call": call,
    "full": full,
    "httpx": via_httpx,
    "testclient": via_testclient,
}


@contextlib.contextmanager
def _without_ordered_sets() -> Iterator[None]:
    """Take asgifuzz's ordered-set patch of anyio out (the bare call has no harness)."""
    from anyio._backends import _asyncio

    patched = []
    for cls in (_asyncio.CancelScope, _asyncio.TaskGroup):
        init = cls.__init__
        if getattr(init, "asgifuzz_ordered", False):
            patched.append((cls, init))
            cls.__init__ = init.__wrapped__  # type: ignore[attr-defined, method-assign]
    try:
        yield
    finally:
        for cls, init in patched:
            cls.__init__ = init  # type: ignore[method-assign]


def batch(
    body: Body, backend: str, examples: int, seed_: int
) -> tuple[int, int, float, float]:
    """Run ``body`` on ``examples`` cases drawn with ``seed_``: (cases, cases the
    server got a status for, wall seconds, CPU seconds of this process)."""
    count = answered = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_)
    @given(case=cases())
    def one(case: Case) -> None:
        nonlocal count, answered
        count += 1
        answered += body(case, backend)

    gc.collect()
    ctx = _without_ordered_sets() if body is call else contextlib.nullcontext()
    with ctx:
        started, cpu = time.perf_counter(), time.process_time()
        one()
        wall = time.perf_counter() - started
        return count, answered, wall, time.process_time() - cpu


def available(mode: str) -> str | None:
    """Why ``mode`` cannot run here (a missing package), or None."""
    try:
        if mode == "httpx":
            _httpx()
        elif mode == "testclient":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from starlette.testclient import TestClient

                TestClient(generate)  # old Starlettes fail on a new httpx here
    except (ImportError, RuntimeError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def measure(
    modes: Sequence[str],
    backends: Sequence[str] = BACKENDS,
    *,
    examples: int = 600,
    repeat: int = 3,
    seconds: float | None = None,
    batch_size: int = 200,
    warmup: int = 20,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Cases/s of each mode on each backend, repeats interleaved.

    With ``seconds``, each (mode, backend) runs batches of ``batch_size`` cases
    (seeds 0, 1, ...) until it has spent that long per repeat; otherwise it runs
    ``examples`` cases per repeat (the seed of the repeat): every mode sees the
    same cases. First, ``warmup`` cases of each, not counted (imports, caches).
    Repeats alternate the order of the backends and of the modes (see the
    module's docstring).
    """
    _determinism.install()  # as the driver would; `call` takes it out again
    skipped = {m: why for m in modes if (why := available(m)) is not None}
    results: dict[str, dict[str, Any]] = {
        m: {
            b: {"cases": [], "answered": [], "seconds": [], "cpu_seconds": []}
            for b in backends
        }
        for m in modes
        if m not in skipped
    }
    with warnings.catch_warnings(), blocking_threads():
        # The apps leak on purpose (that is what the fuzzer finds): keep quiet.
        warnings.simplefilter("ignore")
        for backend in backends:
            for mode in results:
                if warmup:
                    batch(BODIES[mode], backend, warmup, 999_999)
        for r in range(repeat):
            order = [(b, m) for b in backends for m in results]
            for backend, mode in order if r % 2 == 0 else order[::-1]:
                n = ok = k = 0
                spent = cpu = 0.0
                while True:
                    size = batch_size if seconds is not None else examples
                    got, good, took, used = batch(
                        BODIES[mode], backend, size, r * 1000 + k
                    )
                    n, ok, k = n + got, ok + good, k + 1
                    spent, cpu = spent + took, cpu + used
                    if seconds is None or spent >= seconds:
                        break
                cell = results[mode][backend]
                cell["cases"].append(n)
                cell["answered"].append(ok)
                cell["seconds"].append(round(spent, 4))
                cell["cpu_seconds"].append(round(cpu, 4))
                log(
                    f"repeat {r + 1}/{repeat} {backend:7} {mode:10} "
                    f"{n / spent:8.1f} cases/s ({n} in {spent:.2f}s, "
                    f"{ok} answered)"
                )
    for per_backend in results.values():
        for cell in per_backend.values():
            for clock, key in (("seconds", "rate"), ("cpu_seconds", "cpu_rate")):
                rates = [
                    c / max(s, 1e-9)
                    for c, s in zip(cell["cases"], cell[clock], strict=True)
                ]
                cell[f"{key}s"] = [round(x, 1) for x in rates]
                cell[f"median_{key}"] = round(statistics.median(rates), 1)
    ratios: dict[str, dict[str, float]] = {}
    if "full" in results and "generate" in results:
        full, alone = results["full"], results["generate"]
        ratios = {
            key: {
                b: round(_paired(full[b][f"{key}s"], alone[b][f"{key}s"]), 3)
                for b in backends
            }
            for key in ("rate", "cpu_rate")
        }
    return {
        "backends": list(backends),
        "modes": results,
        "skipped": skipped,
        # The median of the repeats' ratios full / Hypothesis alone: wall-clock
        # rates, and CPU-time rates (less sensitive to other load).
        "full_over_hypothesis": ratios.get("rate", {}),
        "full_over_hypothesis_cpu": ratios.get("cpu_rate", {}),
    }


def _paired(a: Sequence[float], b: Sequence[float]) -> float:
    """The median of the ratios ``a[i] / b[i]`` (one per repeat)."""
    return statistics.median(x / max(y, 1e-9) for x, y in zip(a, b, strict=True))


LABELS = {
    "generate": "Hypothesis alone (empty test body): the ceiling",
    "call": "(a) reference: build + one call, minimal receive/send",
    "full": "asgifuzz full pipeline (generate, build, run, judge)",
    "httpx": "(b) httpx ASGITransport",
    "testclient": "(b) Starlette TestClient",
}


def markdown_table(result: dict[str, Any]) -> str:
    """The medians as a Markdown table (cases per wall second, and per CPU
    second of the process in parentheses), with full / Hypothesis-alone."""
    modes, backends = result["modes"], result["backends"]
    lines = [
        "| mode | " + " | ".join(f"{b}: cases/s (per CPU-s)" for b in backends) + " |",
        "|---|" + "---:|" * len(backends),
    ]
    for mode, per_backend in modes.items():
        cells = " | ".join(
            f"{per_backend[b]['median_rate']:.0f} ({per_backend[b]['median_cpu_rate']:.0f})"
            for b in backends
        )
        lines.append(f"| {LABELS[mode]} | {cells} |")
    for mode, why in result["skipped"].items():
        cells = " | ".join([f"n/a ({why})"] * len(backends))
        lines.append(f"| {LABELS[mode]} | {cells} |")
    ratios, cpu = result["full_over_hypothesis"], result["full_over_hypothesis_cpu"]
    if ratios:
        cells = " | ".join(f"**{ratios[b]:.0%}** ({cpu[b]:.0%})" for b in backends)
        lines.append(f"| full / Hypothesis alone (goal >= 90 %) | {cells} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=600, help="cases per repeat")
    parser.add_argument("--repeat", type=int, default=3, help="repeats (median)")
    parser.add_argument("--seconds", type=float, help="seconds per repeat instead")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted cases")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--markdown", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; pick from {list(MODES)}")
    machine = _machine.describe(os.getloadavg())
    result = measure(
        modes,
        args.backends.split(","),
        examples=args.examples,
        repeat=args.repeat,
        seconds=args.seconds,
        warmup=args.warmup,
    )
    machine["loadavg_end"] = list(os.getloadavg())
    command = "python benchmarks/throughput.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    table = markdown_table(result)
    print(table)
    data = {"command": command, "machine": machine, **result}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        end = ", ".join(f"{x:.2f}" for x in machine["loadavg_end"])
        args.markdown.write_text(
            f"# Throughput\n\n`{command}`\n\n{table}\n\n"
            "Median over the repeats of cases per wall second (per CPU second of "
            "the process in parentheses: less sensitive to other load on a shared "
            "machine); every mode ran the same cases. "
            f"{_machine.markdown(machine)} Load average at the end: {end}.\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
