"""The code a reproducer borrows: the check for each failure key, and helpers.

`CHECKS` holds, per failure key, what the app must record and the body of the
script's ``bug_shows()``; `check_source` picks the one for a key (refusing
keys that cannot show on the case, as the oracles do); `HELPERS` are small
functions copied into a script only when its code calls them.
"""

from __future__ import annotations

import re
from string import Template

from asgifuzz._driver.extensions import PATHSEND, TRAILERS, scope_extensions
from asgifuzz._driver.server import LIMIT, PATIENCE
from asgifuzz._oracles.hangs import promises_streaming
from asgifuzz._repro.middleware import expected_bodies
from asgifuzz._repro.render import bytes_lit, lit, render
from asgifuzz.models import Case
from asgifuzz.models._parts import PASSTHROUGH_KINDS

#: The checks, one per key (``*``: a family of keys), as ``## key | what the app
#: records | what is expected`` and the body of the script's ``bug_shows()``.
CHECKS = """\
## I11:no-body | | a 1xx, 204 or 304 response carries no body (RFC 9110 15.3.5, 15.4.5)
print(f"status {server.status}, body {server.response_body!r}")
no_content = server.status is not None and (
    server.status < 200 or server.status in (204, 304)
)
return no_content and bool(server.response_body)
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
## I4:streaming | streamed | each chunk of the stream reaches the client before the next is made
stream = b""  # the chunks the endpoint made before the one it is making
for i, (delivered, gone) in enumerate(SEEN["stream"]):
    if gone:
        return False  # the stream is promised to a client that stays
    stream += b"data: %d\\n\\n" % i
    got = decoded(delivered, server.headers)
    print(f"when the endpoint made chunk {i + 1}, the client could decode {got!r}")
    # Its length: a layer may transform the bytes (keeping their length).
    if got is not None and len(got) < len(stream):
        return True
return False
## I5:never | background | the background task runs after the response is complete
attached, ran = SEEN["tasks attached"], SEEN["tasks run"]
print(f"background tasks: {attached} attached, {ran} started")
# Only a response that reached a connected client promises its background task.
answered = server.complete and not server.left_early and server.escaped is None
answered = answered and not SEEN["handled"]  # else a layer's answer replaced it  #?handles
return answered and ran < attached
## I5:early | background | the background task starts once the response was sent
at_start = SEEN.get("response complete when the endpoint's task started")
print(f"the server had the whole response when the task started: {at_start}")
# Only a response that reached a connected client promises the order.
answered = server.complete and not server.left_early and server.escaped is None
return answered and at_start is False
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
## I8:* | raised | pass-through middleware does not change what the server sees ($tag)
with_layers = run(make_app, backend).view()
without = run(make_app_without_passthrough, backend).view()
print(f"with the pass-through layers:    {with_layers}")
print(f"without the pass-through layers: {without}")
a, b = with_layers["$field"], without["$field"]
return $differs
## X1:lost | trailers | the trailers the endpoint sent reach the server, which advertised them
print(f"the endpoint sent trailers {SEEN['trailers sent']}; the server got {server.trailers}")
return server.complete and bool(SEEN["trailers sent"]) and not server.trailers
## X2 | | the body of a pathsend response is the file's content
if server.pathsend is None or not server.complete:
    return False
content = Path(server.pathsend).read_bytes()
print(f"the file holds {len(content)} bytes; the server got {len(server.response_body)}")
return server.response_body != content
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
    "leaves": '''\
def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions a group holds, at any depth (``exc`` itself if it is none)."""
    inner = getattr(exc, "exceptions", None)
    return [m for e in inner for m in leaves(e)] if inner else [exc]''',
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
    "decoded": '''\
def decoded(body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """What a client can decode of the body it has so far (the start of a gzip
    stream decodes to what is complete in it); None for a coding other than gzip."""
    codings = [
        coding.strip()
        for name, value in headers
        if name.lower() == b"content-encoding"
        for coding in value.decode("latin-1").lower().split(",")
    ]
    for coding in reversed([c for c in codings if c not in ("", "identity")]):
        if coding != "gzip":
            return None
        body = zlib.decompressobj(wbits=31).decompress(body)
    return body''',
    "only_cancellations": '''\
def only_cancellations(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation (anyio 3 on trio can wrap one in a group)."""
    members = getattr(exc, "exceptions", None)
    if members:
        return all(only_cancellations(e) for e in members)
    return isinstance(exc, anyio.get_cancelled_exc_class())''',
    "TrailersResponse": '''\
class TrailersResponse(PlainTextResponse):
    """Announces trailers and sends its body's digest in them, where the scope
    advertises http.response.trailers (a plain response elsewhere)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.trailers" not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers, "trailers": True})
        await send({"type": "http.response.body", "body": self.body})
        digest = hashlib.sha256(self.body).hexdigest().encode()
        trailers = [(b"x-content-sha256", digest)]
        SEEN["trailers sent"] += trailers  #?see_trailers
        await send(
            {"type": "http.response.trailers", "headers": trailers, "more_trailers": False}
        )
        if self.background is not None:
            await self.background()''',
    "EarlyHintResponse": '''\
class EarlyHintResponse(PlainTextResponse):
    """A plain response after an early hint, where the scope advertises
    http.response.early_hint."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.early_hint" in scope.get("extensions", {}):
            link = b"</style.css>; rel=preload; as=style"
            await send({"type": "http.response.early_hint", "links": [link]})
        await super().__call__(scope, receive, send)''',
    "file_of": '''\
def file_of(content: bytes) -> str:
    """A file holding ``content``, in a folder removed at exit (for pathsend)."""
    folder = tempfile.mkdtemp(prefix="repro-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "content.txt"
    path.write_bytes(content)
    return str(path)''',
}

_RUN = 'server = run(make_app, backend)\nprint(f"observed: {server.report()}")\n'
_LEAKS = {
    "asyncgen": '"Async generator" in text',
    "coroutine": '"never awaited" in text',
}
_VIEW = ("complete", "status", "escaped", "body", "headers")
#: How an I8 field differs, by its tag's direction (as the oracle names it:
#: ``+`` the run with the layers has more, ``-`` less, nothing: only changed).
_WAYS = {
    "complete+": "a and not b",
    "complete-": "b and not a",
    "escaped+": "a is not None and b is None",
    "escaped-": "a is None and b is not None",
    "escaped": "a != b and None not in (a, b)",
    "body+": "a != b and a.startswith(b)",
    "body-": "a != b and b.startswith(a)",
    "body": "not (a.startswith(b) or b.startswith(a))",
    "headers+": "set(a) > set(b)",
    "headers-": "set(a) < set(b)",
    "headers": "a != b and not (set(a) > set(b) or set(a) < set(b))",
}
#: The keys a script can check, for the error message of an unsupported key.
SUPPORTED = (
    "I1:<exception type>, I1:500, I1:incomplete, I2:request-after-body, I3, "
    "I4:response, I4:app, I4:streaming, I5:never, I5:early, I5:blocking, I6:collapsed, I6:wrapped, "
    f"I7:{{task, {', '.join(_LEAKS)}, <class named in a ResourceWarning>}}, "
    f"I8:{{{', '.join(_VIEW)}}}[+|-], I9:endpoint, I11:no-body, X1:lost, X2, "
    "X3:{unadvertised, late, mixed}"
)


def parse_checks(text: str) -> dict[str, tuple[set[str], str, str]]:
    """Per key: what the app records, what is expected, the check's source."""
    out = {}
    for chunk in text.split("## ")[1:]:
        head, _, source = chunk.partition("\n")
        key, obs, expected = (part.strip() for part in head.split("|"))
        out[key] = ({o for o in obs.split(",") if o}, expected, source.rstrip())
    return out


_CHECKS = parse_checks(CHECKS)


def check_source(key: str, case: Case) -> tuple[set[str], str, str]:
    """What the app must record for ``key``, what is expected, and the check."""
    inv, _, tag = key.partition(":")
    named = re.fullmatch(r"[A-Z]\w*", tag) is not None
    # I8's tags name a field of the view and a direction (``complete+``).
    field = tag.rstrip("+-")
    family = {"I1": named, "I7": named or tag in _LEAKS, "I8": field in _VIEW}
    found = _CHECKS.get(key) or (_CHECKS[f"{inv}:*"] if family.get(inv) else None)
    if found is None:
        raise ValueError(
            f"no standalone check for key {key!r}; supported keys: {SUPPORTED}"
        )
    # As the oracles: keys that cannot show on this case are never reported for it.
    ep, layers = case.endpoint, case.stack.layers
    advertised = scope_extensions(case.server.name, case.server.http_version) or {}
    waits = ep.kind in ("wait_disconnect", "poll_disconnect")
    tasks = ep.background != "none" or any(
        la.behaviour == "background" for la in layers
    )
    transparent = case.client.disconnect == "never" and any(
        la.kind in PASSTHROUGH_KINDS for la in layers
    )
    rules = {
        "I4": (not waits, "its endpoint waits for the disconnect (see I9)"),
        "I4:streaming": (
            promises_streaming(case) and ep.chunks > 1,
            "no chunk follows another after a while through unbuffered layers",
        ),
        "I5:never": (tasks, "it has no background task"),
        "I5:early": (ep.background != "none", "its endpoint has no background task"),
        "I5:blocking": (ep.background == "wait", "only a 1-second task can block"),
        "I8": (transparent, "I8 needs a pass-through layer and a client that stays"),
        "I9": (waits, "its endpoint does not wait for the disconnect"),
        "X1": (
            ep.kind == "trailers" and TRAILERS in advertised,
            "its endpoint sends no trailers, or the server does not advertise them",
        ),
        "X2": (
            ep.kind == "pathsend"
            and PATHSEND in advertised
            and not any(
                la.behaviour in ("transform_body", "replace_body") for la in layers
            ),
            "no pathsend reaches the server unrewritten",
        ),
    }
    applies, why = rules.get(key, rules.get(inv, (True, "")))
    if not applies:
        raise ValueError(f"key {key!r} cannot show on this case: {why}")
    obs, expected, source = found
    handles = any(la.behaviour == "catch" for la in case.stack.layers)
    if "background" in obs and handles:
        # A layer that handled an exception replaced the response, and its tasks.
        obs = {*obs, "handled"}
    bodies = expected_bodies(case)
    reads = lit(bodies)
    if len(reads) > 70:  # one reader a line, as the formatter would put it
        reads = (
            "{\n"
            + "".join(f"    {lit(k)}: {bytes_lit(v)},\n" for k, v in bodies.items())
            + "}"
        )
    values = {
        "tag": tag,
        "field": field,
        "differs": _WAYS.get(tag, "a != b"),
        # Servers catch a disconnect error that escapes once the client has left.
        "gone": " and not server.gone" if tag.startswith("ClientDisconnect") else "",
        "match": _LEAKS.get(tag, f'"<{tag}" in text'),
        "expected": reads,
        "patience": f"{PATIENCE:g}",
        "limit": f"{LIMIT:g}",
    }
    source = render(source, {"handles"} if handles else set(), **values)
    return (
        obs,
        Template(expected).substitute(values),
        (_RUN + source if "run(" not in source else source),
    )
