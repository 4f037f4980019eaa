"""asgi-csrf 0.11: five requests a client can send make the middleware raise
(a 500, or an error logged after the client left) instead of answering them
(2 to 5 are unsafe-method requests that carry a cookie but no x-csrftoken header,
so the middleware looks for the token in the body):

1. a cookie header that is not UTF-8 (any request, GET too): UnicodeDecodeError;
2. a form-urlencoded POST whose body is not UTF-8: UnicodeDecodeError;
3. a multipart POST, with python-multipart 0.0.34 (what pip installs today):
   TypeError: FormParser.__init__() got an unexpected keyword argument 'FileClass';
4. a form POST whose client disconnects before the body has arrived: AssertionError;
5. a multipart POST whose content-type has no "; boundary=" (none, or written
   ";boundary=" without the space): IndexError.

    pip install asgi-csrf==0.11 starlette anyio && python asgi-csrf.py

Exits 1 while any of them is there, 0 once all are fixed (5 is checked with the
python-multipart that pip installs; it raises before the parser is made).
"""

import anyio
from asgi_csrf import asgi_csrf
from starlette.responses import PlainTextResponse


async def endpoint(scope, receive, send):
    await PlainTextResponse("hello")(scope, receive, send)


APP = asgi_csrf(endpoint, signing_secret="fuzz")


async def call(method, headers, messages):
    """Run one request; the status sent, or the exception the middleware raised."""
    sent = []
    pending = list(messages)

    async def receive():
        if pending:
            return pending.pop(0)
        await anyio.sleep_forever()

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "query_string": b"",
    }
    try:
        await APP(scope, receive, send)
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"
    return f"answered {sent[0]['status']}" if sent else "answered nothing"


def body(data):
    return [{"type": "http.request", "body": data, "more_body": False}]


CASES = [
    ("1. GET, cookie a=caf\\xe9 (latin-1)", "GET", [("cookie", "a=caf\xe9")], body(b"")),
    (
        "2. POST form-urlencoded, body name=\\xe9&x=1 (latin-1)",
        "POST",
        [("cookie", "session=abc"), ("content-type", "application/x-www-form-urlencoded")],
        body(b"name=\xe9&x=1"),
    ),
    (
        "3. POST multipart/form-data",
        "POST",
        [("cookie", "session=abc"), ("content-type", "multipart/form-data; boundary=XyZ")],
        body(b'--XyZ\r\nContent-Disposition: form-data; name="field"\r\n\r\nv\r\n--XyZ--\r\n'),
    ),
    (
        "4. POST form-urlencoded, the client leaves before the body",
        "POST",
        [("cookie", "session=abc"), ("content-type", "application/x-www-form-urlencoded")],
        [{"type": "http.disconnect"}],
    ),
    (
        "5. POST multipart/form-data without a boundary parameter",
        "POST",
        [("cookie", "session=abc"), ("content-type", "multipart/form-data")],
        body(b'--XyZ\r\nContent-Disposition: form-data; name="field"\r\n\r\nv\r\n--XyZ--\r\n'),
    ),
]


async def main():
    failed = False
    for title, method, headers, messages in CASES:
        result = await call(method, headers, messages)
        print(f"{title}: {result}")
        failed |= result.startswith("raised")
    raise SystemExit(1 if failed else 0)


anyio.run(main)
