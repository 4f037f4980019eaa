"""A user target that fails every case: reported once, as a likely misconfiguration.

Middleware written for one app often reads what that app provides:
``scope["app"].state.db``, ``request.state.user`` set by an outer middleware.
Fuzzed alone (``--middleware``), it raises on every case, and each stack and
request would be one more finding. `Watch` looks at the first cases instead:
when a user layer (or the ``--app``) raised an exception of its own (one that
did not come from inside it: the recorder's taps show what crossed the
boundaries above and below it) on every one of the first `CASES` distinct
cases that reached it, on every backend, the campaign stops with one
`Misconfiguration`: the target, what it raised (up to three kinds: the same
line may raise ``KeyError: 'app'`` in a stack without a Starlette app and
``AttributeError`` in one with an app that lacks the state; the most frequent
first), what it was
missing, the line of its code, and the fix. A target that passes one case is
never reported; past `WATCH_CASES` cases the watch ends.
"""

from __future__ import annotations

import inspect
import linecache
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from asgifuzz._oracles.verdict import Verdict
from asgifuzz._targets.spec_text import parse_spec
from asgifuzz._targets.specs import app_target, middleware_target
from asgifuzz.models import Case
from asgifuzz.models._build import layer_name
from asgifuzz.models._record import Recorder

#: The distinct cases reaching a target that must all fail for it to be reported.
CASES = 20
#: The cases after which the watch ends (a target rarely reached is not judged).
WATCH_CASES = 500
#: The most kinds of exceptions a report lists.
MOST_RAISED = 3
_NO_ATTRIBUTE = re.compile(r"'(\w+)' object has no attribute '(\w+)'")


@dataclass(frozen=True)
class Misconfiguration:
    """A user target that raised on each of the first `CASES` cases reaching it."""

    #: ``user.<name>`` (a layer) or ``app`` (the ``--app``), and its import spec.
    target: str
    spec: str
    cases: int
    #: What it raised (``KeyError: 'app'``), what that says is missing, where.
    raised: tuple[str, ...]
    missing: tuple[str, ...]
    where: str
    fix: str
    #: The scope type of those cases (a target may pass the others).
    scope: str = "http"

    def describe(self) -> str:
        """The report, one line per part, for the terminal."""
        name = f"--app {self.spec}" if self.target == "app" else self.spec
        lines = [
            f"{name} raised on every one of the first {self.cases} "
            f"{'' if self.scope == 'http' else self.scope + ' '}cases that "
            "reached it (different stacks and requests): likely misconfigured, "
            "so the run stopped instead of reporting each case",
            *(f"  raised: {r}" for r in self.raised),
            *(f"  missing: {m}" for m in self.missing),
            *([f"  at: {self.where}"] if self.where else []),
            f"  fix: {self.fix}",
        ]
        return "\n".join(lines)

    def to_data(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "spec": self.spec,
            "cases": self.cases,
            "raised": list(self.raised),
            "missing": list(self.missing),
            "where": self.where,
            "fix": self.fix,
            "scope": self.scope,
        }


def missing(raised: str, line: str = "") -> str:
    """What an exception's text (and the ``line`` of code that raised it) says
    was missing ("" when it does not say)."""
    kind, _, text = raised.partition(": ")
    if kind == "KeyError" and text:
        if f"scope[{text}]" in line.replace('"', "'"):
            app = " (a Starlette app sets it for what runs inside it)"
            return f"scope[{text}]" + (app if text == "'app'" else "")
        return f"the key {text} (in the scope, or in a mapping it reads)"
    match = _NO_ATTRIBUTE.search(text) if kind == "AttributeError" else None
    if match is None:
        return ""
    owner, attribute = match.groups()
    state = (
        " (app.state is set by the app, e.g. at startup; request.state by "
        "the app or an outer middleware)"
        if owner == "State"
        else ""
    )
    return f"the attribute {attribute!r} of a {owner} object{state}"


@dataclass
class _Seen:
    """What one target did in the cases so far."""

    cases: set[str] = field(default_factory=set)
    raised: Counter[str] = field(default_factory=Counter)
    where: str = ""
    passed: bool = False


def _boundary(case: Case, rec: Recorder, target: str) -> int | None:
    """The boundary just above ``target`` (None: not in this stack)."""
    if target == "app":
        name = "app"
    else:
        layers = case.stack.layers
        index = next((i for i, la in enumerate(layers) if la.kind == target), None)
        if index is None:
            return None
        name = layer_name(index, layers[index])
    try:
        return rec.boundaries.index(name)
    except ValueError:
        return None


def _own_raises(rec: Recorder, above: int) -> set[str] | None:
    """What the target below boundary ``above`` raised itself (not passed on
    from below it); None when the case never reached it."""
    here = [e for e in rec.events if e.where == above]
    if not here:
        return None
    below = {e.detail for e in rec.events if e.where == above + 1 and e.kind == "raise"}
    return {e.detail for e in here if e.kind == "raise"} - below


class Watch:
    """Watches the first cases for a user target that fails them all."""

    def __init__(self, cases: int = CASES, watch_cases: int = WATCH_CASES) -> None:
        self.cases, self.left = cases, watch_cases
        # By target and scope type: a layer that fails every HTTP case is
        # misconfigured even where it passes websocket sessions by.
        self.seen: dict[tuple[str, str], _Seen] = {}
        self.passed: set[tuple[str, str]] = set()  # those that passed a case

    def observe(self, case: Case, verdict: Verdict) -> Misconfiguration | None:
        """Note what ``case`` did; the misconfiguration it completes, if any."""
        if self.left <= 0:
            return None
        self.left -= 1
        targets = [la.kind for la in case.stack.layers if la.family == "user"]
        targets += ["app"] if case.app else []
        watched = [
            t for t in dict.fromkeys(targets) if (t, case.scope) not in self.passed
        ]
        key = repr(case) if watched else ""
        for target in watched:
            seen = self.seen.setdefault((target, case.scope), _Seen())
            if key in seen.cases:
                continue
            outcomes = list(verdict.outcomes.values())
            raised: set[str] = set()
            reached = failed = 0
            for outcome in outcomes:
                above = _boundary(case, outcome.recorder, target)
                own = None if above is None else _own_raises(outcome.recorder, above)
                if own is None:
                    continue
                reached += 1
                failed += bool(own)
                raised |= own
                if not seen.where and own:
                    source = _source_file(target, case.app)
                    seen.where = _where(source, outcome.escaped_frames)
            if not reached:
                continue
            if failed < reached:
                seen.passed = True
                self.passed.add((target, case.scope))
                continue
            seen.cases.add(key)
            seen.raised.update(raised)
            if len(seen.cases) >= self.cases:
                self.left = 0
                return _report(target, case.app, seen, case.scope)
        return None


def _spec(target: str, app: str) -> str:
    if target == "app":
        return app_target(app).spec
    return middleware_target(target[len("user.") :]).spec


def _source_file(target: str, app: str) -> str:
    """The file of the target's code ("" when unknown)."""
    try:
        if target == "app":
            module = sys.modules.get(parse_spec(_spec(target, app), "--app")[1])
            return str(getattr(module, "__file__", "") or "")
        return inspect.getfile(middleware_target(target[len("user.") :]).factory)
    except Exception:  # a target made in code, a spec that cannot be parsed
        return ""


def _where(source: str, frames: list[tuple[str, int, str]]) -> str:
    """``file.py:9 in Class.__call__: the line`` of the innermost frame in the
    target's own file ``source`` ("" when none is)."""
    source = os.path.realpath(source) if source else ""
    for path, line, name in reversed(frames):
        if source and os.path.realpath(path) == source:
            text = linecache.getline(path, line).strip()
            return f"{os.path.basename(path)}:{line} in {name}" + (
                f": {text}" if text else ""
            )
    return ""


def _report(target: str, app: str, seen: _Seen, scope: str) -> Misconfiguration:
    raised = tuple(text for text, _ in seen.raised.most_common(MOST_RAISED))
    line = seen.where.partition(": ")[2]
    if target == "app":
        fix = (
            "give the app what it needs to serve a request: its startup (run it "
            "with its lifespan: drop --no-lifespan), the state or settings it "
            "reads (a factory that sets them up: --app 'module:create_app()'), "
            "or leave out the routes that need an outside service "
            "(--exclude-route)"
        )
    else:
        fix = (
            "it needs what its app provides (scope['app'] and the state its "
            "startup sets, request.state set by an outer middleware): fuzz the "
            "app that installs it instead, with --app 'module:app' (or a factory "
            "that sets the state up: --app 'module:create_app()'), or make it "
            "cope without"
        )
    return Misconfiguration(
        target=target,
        spec=_spec(target, app) or target,
        cases=len(seen.cases),
        raised=raised,
        missing=tuple(m for m in (missing(r, line) for r in raised) if m),
        where=seen.where,
        fix=fix,
        scope=scope,
    )
