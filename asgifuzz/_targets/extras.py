"""What the user adds to every drawn request: headers (``--header 'name:
value'``) and cookies (``--cookie 'name=value'``), parsed and checked here so
that a bad one fails before any case runs, with the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable

from asgifuzz._errors import UsageError

#: A header or cookie name: an RFC 9110 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: A header value: visible latin-1 characters, spaces and tabs (no CR or LF).
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
#: The longest header value a case holds (`asgifuzz.models._case.MAX_HEADER_VALUE`).
MAX_VALUE = 8192
#: The most bytes of the user's cookies together: browsers' limit for one cookie,
#: so that a drawn cookie header with them stays within `MAX_VALUE`.
MAX_COOKIES = 4096


def parse_header(text: str, where: str = "--header") -> tuple[str, str]:
    """``"name: value"`` as ``(name, value)``; `UsageError` with the fix if not."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.match(name):
        raise UsageError(
            f"{where} {text!r}: not a header; write it as 'name: value', e.g. "
            "--header 'x-api-key: secret'"
        )
    if not _VALUE.match(value) or len(value) > MAX_VALUE:
        raise UsageError(
            f"{where} {text!r}: the value must be at most {MAX_VALUE} latin-1 "
            "characters without control characters (no CR or LF)"
        )
    return name.lower(), value


def parse_cookie(text: str, where: str = "--cookie") -> str:
    """``"name=value"``, checked; `UsageError` with the fix if not."""
    name, equals, value = text.strip().partition("=")
    if not equals or not _TOKEN.match(name):
        raise UsageError(
            f"{where} {text!r}: not a cookie; write it as 'name=value', e.g. "
            "--cookie 'session=abc123'"
        )
    if ";" in value or not _VALUE.match(value):
        raise UsageError(
            f"{where} {text!r}: a cookie value has no ';' or control characters; "
            f"give each cookie its own {where}"
        )
    return f"{name}={value}"


def parse_extras(
    headers: Iterable[str], cookies: Iterable[str]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The user's headers and cookies, parsed (`parse_header`, `parse_cookie`)."""
    pairs = tuple(parse_header(h) for h in headers)
    jar = tuple(parse_cookie(c) for c in cookies)
    if len("; ".join(jar)) > MAX_COOKIES:
        raise UsageError(
            f"--cookie: {len('; '.join(jar))} characters of cookies in all; at "
            f"most {MAX_COOKIES} (browsers' limit for one cookie) fit in a request"
        )
    return pairs, jar
