"""The templates of a reproducer's encoder: attribution's stand-in for a user's
compressor (``bhm.encode``, ``asgi.encode``), mirroring
`asgifuzz.models._encode`: it gzips every response a compressor would (the
client accepts one of its codings; the response may have content and has no
coding yet), even an empty body, with the standard library's zlib."""

from __future__ import annotations

from asgifuzz._repro.render import PAUSE, lit, render
from asgifuzz.models import Layer
from asgifuzz.models._encode import DEFAULT_CODINGS

#: The module-level helpers every encoder class uses.
HELPERS = '''\
def gzips(scope: Scope, status: int, headers: list[Any], codings: set[str]) -> bool:
    """Whether a compressor encodes this response: the client accepts one of its
    codings (or *) with a q above 0; the status and method allow content
    (not 1xx, 204, 304, HEAD); no content-encoding yet."""
    if status < 200 or status in (204, 304) or scope.get("method") == "HEAD":
        return False
    if any(name.lower() == b"content-encoding" for name, _ in headers):
        return False
    for name, value in scope.get("headers", []):
        if name.lower() != b"accept-encoding":
            continue
        for item in value.decode("latin-1").split(","):
            coding, *params = (p.strip() for p in item.split(";"))
            q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
            try:
                weight = float(q)
            except ValueError:
                weight = 0.0
            if coding.lower() in codings | {"*"} and weight > 0:
                return True
    return False


def gzipped_headers(headers: list[Any]) -> list[Any]:
    """The headers of a gzipped response: no content-length, the coding, vary."""
    kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    return [*kept, (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]


def gzip_stream() -> Any:
    return zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)'''

BHM_HELPER = '''\
async def gzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk gzipped and sync-flushed, then the stream's end (even of nothing)."""
    stream = gzip_stream()
    async for chunk in chunks:
        yield stream.compress(chunk) + stream.flush(zlib.Z_SYNC_FLUSH)
    yield stream.flush()'''

BHM = f'''\
class $name(BaseHTTPMiddleware):
    """A compressor: gzips the response body as it streams (an empty one too)."""

    async def dispatch(
        self, request: Request, call_next: RequestResponseEndpoint
    ) -> Response:
        {PAUSE.replace("$n", "$before")}  #?before
        response = await call_next(request)
        {PAUSE.replace("$n", "$after")}  #?after
        headers = response.raw_headers
        if gzips(request.scope, response.status_code, headers, $codings):
            response.raw_headers = gzipped_headers(headers)
            response.body_iterator = gzipped(response.body_iterator)
        return response'''

ASGI = f'''\
class $name:
    """A compressor: gzips the response body as it streams (an empty one too),
    holding the start until the first body message, as compressors do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        {PAUSE.replace("$n", "$before")}  #?before
        held: list[Message] = []
        streams: list[Any] = []

        async def gzip_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if gzips(scope, message["status"], headers, $codings):
                    held.append({{**message, "headers": gzipped_headers(headers)}})
                    streams.append(gzip_stream())
                    return
            elif message["type"] == "http.response.body" and streams:
                more = message.get("more_body", False)
                data = streams[0].compress(message.get("body", b""))
                data += streams[0].flush(zlib.Z_SYNC_FLUSH) if more else streams[0].flush()
                if held:
                    await send(held.pop())
                message = {{"type": "http.response.body", "body": data, "more_body": more}}
            await send(message)

        await self.app(scope, receive, gzip_send)
        {PAUSE.replace("$n", "$after")}  #?after'''


def encoder_source(name: str, layer: Layer) -> str:
    """The class of one ``encode`` layer."""
    codings = str(layer.options.get("codings", DEFAULT_CODINGS)).split(",")
    literal = "{" + ", ".join(lit(c.strip().lower()) for c in codings) + "}"
    before, after = layer.pauses
    flags = {"before"} if before else set()
    flags |= {"after"} if after else set()
    template = BHM if layer.family == "bhm" else ASGI
    return render(
        template, flags, name=name, before=before, after=after, codings=literal
    )


def encoder_helpers(layers: list[Layer]) -> list[str]:
    """The helpers the encoder classes among ``layers`` need."""
    if not any(la.behaviour == "encode" for la in layers):
        return []
    bhm = any(la.kind == "bhm.encode" for la in layers)
    return [HELPERS, *([BHM_HELPER] if bhm else [])]
