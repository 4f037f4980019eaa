"""slowapi 0.1.10: SlowAPIASGIMiddleware sends http.response.start again before
every http.response.body message, so any streamed response (StreamingResponse,
FileResponse, StaticFiles) breaks.

    pip install slowapi==0.1.10 starlette anyio && python slowapi-asgi-middleware.py

Exits 1 while the bug is there, 0 once it is fixed.
"""

import anyio
from slowapi import Limiter
from slowapi.middleware import SlowAPIASGIMiddleware
from slowapi.util import get_remote_address
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route


async def stream(request):
    async def chunks():
        yield b"data: 0\n\n"
        yield b"data: 1\n\n"

    return StreamingResponse(chunks(), media_type="text/plain")


app = Starlette(routes=[Route("/", stream)])
app.state.limiter = Limiter(key_func=get_remote_address, default_limits=["1000/minute"])
app.add_middleware(SlowAPIASGIMiddleware)


async def main():
    sent = []
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()  # the client stays connected

    async def send(message):
        sent.append(message["type"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
        "root_path": "", "query_string": b"", "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234), "server": ("test", 80),
    }
    await app(scope, receive, send)
    starts = sent.count("http.response.start")
    print(f"messages sent to the server: {sent}")
    print(f"expected one http.response.start, got {starts}")
    raise SystemExit(1 if starts != 1 else 0)


anyio.run(main)
