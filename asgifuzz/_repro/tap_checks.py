"""The checks a reproducer makes of what crossed the app's boundaries, for the
keys no other template checks: ``I7:task`` (a task still pending when the app
returned, as `asgifuzz._driver.scaffold.within_limit` lists them on asyncio)
and ``X3:<tag>`` (an extension's message where the scope did not advertise it,
or out of order, as `asgifuzz._oracles.extensions.extension_sequences` reads
the recorder). Both read only what the app did, so a script may hold the
user's layers for them, on an HTTP case too.
"""

from __future__ import annotations

from asgifuzz._repro.checks import parse_checks
from asgifuzz._repro.render import render
from asgifuzz.models import Case

TAP_CHECKS = """\
## I7:task | | no task is still pending when the app returned
if backend != "asyncio":
    print("on trio every task belongs to a nursery: none outlives the run")
    return False
with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
    server, pending = runner.run(pending_after(make_app))
print(f"observed: {server.report()}")
for task in pending:
    print(f"still pending when the app returned: {task}")
return bool(pending)
## X3:* | taps | extension messages only where the scope advertised them, in order ($tag)
server = run(make_app, backend)
print(f"observed: {server.report()}")
for boundary, sent in SEEN["sent"].items():
    for tag, why in extension_problems(sent, SEEN["advertised"][boundary]):
        print(f"{boundary}: {why}")
        return tag == "$tag"  # the first problem names the failure
return False"""

#: The helpers the checks call (copied in as `asgifuzz._repro.checks.HELPERS`).
TAP_HELPERS = {
    "pending_after": '''\
async def pending_after(make_app: Callable[[], ASGIApp]) -> tuple[Any, list[str]]:
    """Serve the case; then the tasks (other than this one) still pending, as
    they are then (the loop's shutdown may finish them later)."""
    server = await serve(make_app)
    current = asyncio.current_task()
    tasks = asyncio.all_tasks()
    return server, [repr(t) for t in tasks if t is not current and not t.done()]''',
    "extension_problems": '''\
def extension_problems(
    sent: list[Message], advertised: set[str]
) -> list[tuple[str, str]]:
    """What breaks the ASGI HTTP extensions in what one side sent, as (tag, why):
    an extension's message its scope did not advertise, an early hint after the
    body, a pathsend mixed with body messages or sent twice."""
    found, paths, bodies = [], 0, 0
    extensions = (
        "http.response.early_hint",
        "http.response.pathsend",
        "http.response.trailers",
    )
    for i, m in enumerate(sent):
        kind, at = m.get("type"), f"(message #{i + 1} {m.get('type')!r})"
        if kind in extensions and kind not in advertised:
            found.append(("unadvertised", f"sent {kind}, not advertised {at}"))
            break
        if kind == "http.response.body":
            bodies += 1
        elif kind == "http.response.pathsend":
            paths += 1
        elif kind == "http.response.early_hint" and (bodies or paths):
            found.append(("late", f"sent an early hint after the body {at}"))
            break
        if paths and (bodies or paths > 1):
            found.append(("mixed", f"sent a pathsend with a body or twice {at}"))
            break
    return found''',
}

#: The keys these checks take, for the error message of an unsupported key.
TAP_SUPPORTED = "I7:task, X3:{unadvertised, late, mixed}"
_CHECKS = parse_checks(TAP_CHECKS)
_X3_TAGS = ("unadvertised", "late", "mixed")


def takes(key: str) -> bool:
    """Whether ``key`` is one of these checks'."""
    inv, _, tag = key.partition(":")
    return key == "I7:task" or (inv == "X3" and tag in _X3_TAGS)


def tap_check(key: str, case: Case) -> tuple[set[str], str, str]:
    """What the app must record for ``key``, what is expected, and the check."""
    inv, _, tag = key.partition(":")
    if inv == "X3" and case.scope != "http":
        raise ValueError(
            f"field 'scope' is {case.scope!r}: X3 judges the HTTP extensions' "
            "messages, which only an http case sends"
        )
    obs, expected, source = _CHECKS["I7:task" if inv == "I7" else "X3:*"]
    return obs, expected.replace("$tag", tag), render(source, set(), tag=tag)
