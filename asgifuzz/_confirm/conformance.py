"""Conformance of the server profiles: the driver's claims, measured on the real
servers.

The same `ProbeApp` and the same three requests (`PROBES`, played by the raw
client of ``confirm``) run twice: on the driver's `FakeServer` with the
server's profile, and on the real server. Each claim the driver relies on is
read from both records and compared; a `Mismatch` names the profile, the
claim, what the profile says, what the server does and its version.

``python -m asgifuzz._confirm.conformance [uvicorn|hypercorn|daphne|granian|all]`` (what
``scripts/conformance`` runs) checks these and the websocket claims
(`ws_conformance`), prints one line per mismatch and exits 1 on one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgifuzz._confirm.client import play
from asgifuzz._confirm.mismatch import Mismatch
from asgifuzz._confirm.probe import LARGE, ProbeApp, Record
from asgifuzz._confirm.process import running
from asgifuzz._confirm.serve import SERVERS, missing
from asgifuzz._confirm.ws_conformance import check_websocket
from asgifuzz._driver.server import FakeServer, make_scope
from asgifuzz._driver.vtime import VirtualTimeLoop
from asgifuzz.models import Case, Client, Request, Server
from asgifuzz.models._record import Recorder

#: The requests that probe a server: a body in three writes, a plain GET, a GET
#: whose client hangs up once it has read the first body chunk, a POST whose
#: client hangs up at once (before the app reads the body), a GET answered
#: twice, and a large body in one write.
PROBES = (
    Case(request=Request("POST", "/body", body=(b"abc", b"def", b"ghij"))),
    Case(request=Request("GET", "/after-body")),
    Case(request=Request("GET", "/disconnect"), client=Client("body_message", 0)),
    Case(
        request=Request("POST", "/unread", body=(b"unread",)),
        client=Client("receive", 0),
    ),
    Case(request=Request("GET", "/after-complete")),
    Case(request=Request("POST", "/large", body=(b"x" * LARGE,))),
)
#: Where the real client's hang-up differs from the profile's: the profile's
#: client is gone at the app's first ``receive()`` with the body arrived; the
#: real one hangs up once it has sent the body (after chunk #1).
WIRE_CLIENTS = {"/unread": Client("receive", 1)}
#: Wall-clock seconds to wait for the real server's records.
RECORD_WAIT = 10.0


def _final_carries_data(r: Record) -> bool:
    return bool(r["messages"]) and r["messages"][-1][0] not in (0, "http.disconnect")


#: Each claim: its name, the probe's path, and what it reads from the record.
#: The body's exact split depends on timing on a real server; its shape does not.
CLAIMS: tuple[tuple[str, str, Callable[[Record], Any]], ...] = (
    ("scope['asgi']['spec_version']", "/body", lambda r: r["asgi"].get("spec_version")),
    ("scope['extensions']", "/body", lambda r: r["extensions"]),
    (
        "the body's bytes arrive whole",
        "/body",
        lambda r: sum(m[0] for m in r["messages"]),
    ),
    (
        "an empty http.request with more_body=True occurs",
        "/body",
        lambda r: any(m == [0, True] for m in r["messages"]),
    ),
    ("the final http.request carries data", "/body", _final_carries_data),
    (
        "receive() once the body is read, before the response",
        "/after-body",
        lambda r: r["before_response"],
    ),
    (
        "receive() twice after the response is complete",
        "/after-body",
        lambda r: r["after_response"],
    ),
    (
        "receive() twice after the client hung up (does http.disconnect repeat?)",
        "/disconnect",
        lambda r: r["after_disconnect"],
    ),
    (
        "send() after the client hung up",
        "/disconnect",
        lambda r: r["send_after_disconnect"],
    ),
    (
        "a request without a body is one empty http.request, more_body=False",
        "/after-body",
        lambda r: r["messages"] == [[0, False]],
    ),
    (
        "receive() once the client sent its body and hung up, before the app read it",
        "/unread",
        lambda r: r["unread"],
    ),
    (
        "send() of another body chunk after the final one (the client connected)",
        "/after-complete",
        lambda r: r["send_after_complete"],
    ),
    (
        f"a {LARGE}-byte body in one write comes in http.request messages of at "
        "most 8192 bytes",
        "/large",
        lambda r: max(m[0] for m in r["messages"]) <= 8192,
    ),
    (
        f"a {LARGE}-byte body in one write: its bytes arrive whole",
        "/large",
        lambda r: sum(m[0] for m in r["messages"]),
    ),
)


def profile_records(profile: str) -> dict[str, Record]:
    """The probe's records on the driver's `FakeServer` with ``profile`` (on
    virtual time: the probe's waits cost nothing)."""
    records: dict[str, Record] = {}

    async def main() -> None:
        for probe in PROBES:
            case = Case(
                request=probe.request, client=probe.client, server=Server(profile)
            )
            server = FakeServer(case, Recorder())
            app = ProbeApp(lambda r: records.__setitem__(r["path"], r))
            await app(make_scope(case), server.receive, server.send)

    # As the driver runs a case (asyncio.Runner; anyio.run would do the same,
    # but under coverage's tracer it stops the tracing of its callers' lines).
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(main())
    return records


def server_records(
    server: str, *, python: str = sys.executable, env: dict[str, str] | None = None
) -> tuple[dict[str, Record], str]:
    """The probe's records on the real ``server``, and its name and version."""
    with tempfile.TemporaryDirectory(prefix="asgifuzz-conformance-") as folder:
        sink = Path(folder) / "records.jsonl"
        sink.touch()
        with running(server, ["--probe", str(sink)], python=python, env=env) as live:
            for probe in PROBES:
                path = probe.request.path
                client = WIRE_CLIENTS.get(path, probe.client)
                play(dataclasses.replace(probe, client=client), live.port, 5.0)
            deadline = time.monotonic() + RECORD_WAIT
            while len(sink.read_text().splitlines()) < len(PROBES):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)  # the app writes its record once it is done
        lines = sink.read_text().splitlines()
    records = {r["path"]: r for r in map(json.loads, lines)}
    return records, f"{live.name} {live.version}"


def check(server: str, *, profile: str | None = None) -> tuple[list[Mismatch], str]:
    """The claims of ``profile`` (default: the server's own) that ``server``
    breaks, and the server's name and version."""
    profile = profile or server
    said = profile_records(profile)
    seen, where = server_records(server)
    unseen = {path for _, path, _ in CLAIMS} - set(seen)
    if unseen:  # a probe cut short (seen once on a loaded machine): measure again
        again, _ = server_records(server)
        seen = {**{p: again[p] for p in unseen if p in again}, **seen}
    out = []
    for claim, path, read in CLAIMS:
        says = read(said[path])
        does = (
            read(seen[path]) if path in seen else "no record (the probe did not finish)"
        )
        if says != does:
            out.append(Mismatch(profile, claim, says, does, where))
    return out, where


def main(argv: list[str] | None = None) -> int:
    """Check the profiles of the servers named (default: all; those not
    installed are skipped, saying so); exit 1 on a mismatch."""
    names = list(sys.argv[1:] if argv is None else argv) or ["all"]
    servers = list(SERVERS) if "all" in names else names
    failed = False
    for server in servers:
        if missing(server):
            sys.stdout.write(f"profile {server!r}: skipped: {missing(server)}\n")
            continue
        mismatches, where = check(server)
        mismatches += check_websocket(server)[0]
        failed = failed or bool(mismatches)
        verdict = "conforms" if not mismatches else f"{len(mismatches)} mismatches"
        sys.stdout.write(f"profile {server!r} on {where}: {verdict}\n")
        for m in mismatches:
            sys.stdout.write(f"  MISMATCH {m}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
