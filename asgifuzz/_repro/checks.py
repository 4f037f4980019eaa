"""The code a reproducer borrows: the check for each failure key, and helpers.

`CHECKS` holds, per failure key, what the app must record and the body of the
script's ``bug_shows()``; `HELPERS` are small functions copied into a script
only when its code calls them.
"""

from __future__ import annotations

#: The checks, one per key (``*``: a family of keys), as ``## key | what the app
#: records | what is expected`` and the body of the script's ``bug_shows()``.
CHECKS = """\
## I1:500 | raised | no 500 response when no endpoint or layer raised anything
return server.status == 500 and not SEEN["raised"]
## I1:incomplete | | the app does not leave a connected client with half a response
returned = server.returned and server.escaped is None
return returned and not server.complete and not server.left_early
## I1:* | | a complete response or a clean end, never a $tag the app did not raise
return type(server.escaped).__name__ == "$tag"$gone
## I2:request-after-body | received | no layer receives http.request after the body
bug = False
for boundary, messages in SEEN["received"].items():
    print(f"{boundary}: received {[m['type'] for m in messages]}")
    complete = False
    for message in messages:
        if message["type"] == "http.request":
            bug = bug or complete
            complete = complete or not message.get("more_body", False)
return bug
## I3 | reads | every reader reads exactly the bytes the client sent
expected = $expected
for who, body in SEEN["reads"]:
    print(f"{who} read {body!r}; expected {expected[who]!r}")
return any(body != expected[who] for who, body in SEEN["reads"])
## I4:response | | the client gets its complete response within $patience virtual seconds
return server.timed_out
## I4:app | | the app returns (within $limit virtual seconds)
return server.hung
## I5:never | background | the background task runs after the response is complete
attached, ran = SEEN["tasks attached"], SEEN["tasks run"]
print(f"background tasks: {attached} attached, {ran} started")
# Only a response that reached a connected client promises its background task.
answered = server.complete and not server.left_early and server.escaped is None
answered = answered and not SEEN["handled"]  # else a layer's answer replaced it  #?handles
return answered and ran < attached
## I5:blocking | background | the response does not wait for its background task
at_end = SEEN["response complete when the endpoint's task ended"]
print(f"the server had the whole response when the task ended: {at_end}")
# Only a response that reached a connected client promises its background task.
answered = server.complete and not server.left_early and server.escaped is None
answered = answered and not SEEN["handled"]  # else a layer's answer replaced it  #?handles
return answered and at_end is False
## I6:collapsed | raised | the ExceptionGroup the app raised comes out as itself
print(f"raised on purpose: {SEEN['raised']!r}")
inside = [m for group in SEEN["raised"] for m in members(group)[1:]]
return any(server.escaped is m for m in inside)
## I6:wrapped | raised | the exception the app raised comes out as itself, not in a group
print(f"raised on purpose: {SEEN['raised']!r}")
escaped, ours = server.escaped, [m for e in SEEN["raised"] for m in members(e)]
if escaped is None or any(same(escaped, e) for e in ours):
    return False
# A group that holds one of the app's exceptions and no other failure wraps it
# (a group of several failures, the app's and a disconnect say, is a fair report).
failures = [
    m
    for m in members(escaped)[1:]
    if any(m is e for e in ours) or type(m).__name__.startswith("ClientDisconnect")
]
return len(failures) == 1 and any(failures[0] is e for e in ours)
## I7:* | | nothing leaks: no ResourceWarning ($tag) after the run and a collection
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # Nothing is collected during the run; once the tracebacks (which keep the
    # app's frames alive) are dropped, one collection finds what the run leaked.
    gc.collect()
    gc.disable()
    try:
        server = run(make_app, backend)
        forget_tracebacks(server.escaped)
        gc.collect()
    finally:
        gc.enable()
print(f"observed: {server.report()}")
bug = False
for warning in caught:
    text = f"{warning.category.__name__}: {warning.message}"
    leak = issubclass(warning.category, (ResourceWarning, RuntimeWarning))
    if leak and $match:
        print(text)
        bug = True
return bug
## I8:* | | pass-through middleware does not change what the server sees ($tag)
with_layers = run(make_app, backend).view()
without = run(make_app_without_passthrough, backend).view()
print(f"with the pass-through layers:    {with_layers}")
print(f"without the pass-through layers: {without}")
return with_layers["$tag"] != without["$tag"]
## I9:endpoint | disconnect | an endpoint waiting for the disconnect sees it
seen = SEEN["endpoint saw the disconnect"]
print(f"the endpoint ran: {SEEN['endpoint ran']}; it saw the disconnect: {seen}")
return server.gone and SEEN["endpoint ran"] and not seen"""


HELPERS = {
    "Boom": '''\
class Boom(Exception):
    """An exception the app raises on purpose."""''',
    "raised": '''\
def raised(exc: BaseException) -> BaseException:
    """Remember an exception the app raises on purpose, to compare with what escapes."""
    SEEN["raised"].append(exc)
    return exc''',
    "checkpoints": '''\
async def checkpoints(n: int) -> None:
    """Let the other ready tasks run, ``n`` times over."""
    for _ in range(n):
        await anyio.lowlevel.checkpoint()''',
    "members": '''\
def members(exc: BaseException) -> list[BaseException]:
    """``exc`` and, for a group (of any kind), every exception nested in it."""
    out = [exc]
    for member in getattr(exc, "exceptions", ()):
        out += members(member)
    return out''',
    "same": '''\
def same(a: BaseException, b: BaseException) -> bool:
    """Whether ``a`` is ``b``, or a copy of group ``b`` (as split() and derive() make)."""
    if a is b:
        return True
    inside = getattr(a, "exceptions", None) == getattr(b, "exceptions", ())
    return type(a) is type(b) and inside and str(a) == str(b)''',
    "forget_tracebacks": '''\
def forget_tracebacks(exc: BaseException | None) -> None:
    """Drop the frames that ``exc``, its causes, contexts and members keep alive."""
    todo, done = [exc], set()
    while todo:
        e = todo.pop()
        if e is not None and id(e) not in done:
            done.add(id(e))
            e.__traceback__ = None
            todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]''',
    "Watch": '''\
class Watch:
    """Records what the app receives at one boundary; it adds no checkpoint, so it
    changes no interleaving."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = SEEN["received"].setdefault(self.name, [])

        async def watched_receive() -> Message:
            message = await receive()
            received.append(message)
            return message

        await self.app(scope, watched_receive, send)''',
}

#: Every import a script may need; a script gets those of the names it uses.
