"""secure 2.0.1: SecureASGIMiddleware removes the wrong headers when the response
already has some of the headers it sets (stale indices after list.pop), and raises
IndexError when it has many of them.

    pip install secure==2.0.1 starlette anyio && python secure-middleware.py

Exits 1 while the bug is there, 0 once it is fixed.
"""

import anyio
from secure import Secure
from secure.middleware import SecureASGIMiddleware
from starlette.responses import PlainTextResponse

DEFAULTS = dict(Secure.with_default_headers().headers)


def endpoint(headers):
    async def app(scope, receive, send):
        await PlainTextResponse("hello", headers=headers)(scope, receive, send)

    return app


async def call(app):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    return [(k.decode().lower(), v.decode()) for k, v in sent[0]["headers"]]


async def main():
    failed = False
    # 1. The app sets two of the headers itself (Referrer-Policy before X-Frame-Options).
    app = SecureASGIMiddleware(
        endpoint({"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})
    )
    headers = await call(app)
    names = [name for name, _ in headers]
    print("1. app sets Referrer-Policy and X-Frame-Options; the middleware sent:")
    for name, value in headers:
        print(f"     {name}: {value[:40]}")
    own = {"content-length", "content-type"}  # the app's, which the middleware must keep
    missing = sorted(({k.lower() for k in DEFAULTS} | own) - set(names))
    twice = sorted({n for n in names if names.count(n) > 1})
    print(f"   expected content-length, content-type and every default header once; missing: {missing}, more than once: {twice}")
    failed |= bool(missing or twice)
    # 2. The response already carries the default headers, then one more (two
    #    SecureASGIMiddleware with a header-adding layer between them, or an app
    #    that sets them itself): the middleware raises.
    app = SecureASGIMiddleware(SecureASGIMiddleware(endpoint({**DEFAULTS, "x-request-id": "1"})))
    try:
        await call(app)
        print("2. nested, defaults already set plus one header: no exception")
    except IndexError as exc:
        print(f"2. nested, defaults already set plus one header: IndexError: {exc}")
        failed = True
    raise SystemExit(1 if failed else 0)


anyio.run(main)
