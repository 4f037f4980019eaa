"""brotli-asgi 1.7.0: BrotliMiddleware(minimum_size=0) gives a 204 (or 304)
response a brotli body and content-length: 1.

    pip install brotli-asgi==1.7.0 starlette anyio && python brotli-asgi.py

Exits 1 while the bug is there, 0 once it is fixed.
"""

import anyio
from brotli_asgi import BrotliMiddleware
from starlette.responses import Response


def empty(status):
    async def app(scope, receive, send):
        await Response(status_code=status)(scope, receive, send)

    return app


async def main():
    failed = False
    for status in (204, 304):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http", "method": "GET", "path": "/", "query_string": b"",
            "headers": [(b"accept-encoding", b"br")],
        }
        await BrotliMiddleware(empty(status), minimum_size=0)(scope, receive, send)
        start = sent[0]
        body = b"".join(m.get("body", b"") for m in sent[1:])
        print(f"status {start['status']}, headers {start['headers']}, body {body!r}")
        print(f"expected no body for a {status} (RFC 9110 §6.4.1), got {len(body)} bytes")
        failed |= bool(body)
    raise SystemExit(1 if failed else 0)


anyio.run(main)
