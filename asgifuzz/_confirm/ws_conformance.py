"""Conformance of the WebSocket profiles: the driver's websocket claims,
measured on the real servers.

The same `WsProbeApp` and the same client scripts (`ws_probe.WS_PATHS`) run
twice: on the driver's `FakeWsServer` with the server's profile (the client is
the driver's), and on the real server (the client is `ws_client.play_ws`, over
wsproto). Each claim is read from both records (what the app saw, and what the
client saw under ``"client"``) and compared; a `Mismatch` names the profile,
the claim, what the profile says, what the server does and its version.
``python -m asgifuzz._confirm.conformance`` checks these after the HTTP ones.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgifuzz._confirm.mismatch import Mismatch
from asgifuzz._confirm.process import running
from asgifuzz._confirm.ws_client import play_ws
from asgifuzz._confirm.ws_probe import OFFERED, WS_PATHS, Record, WsProbeApp
from asgifuzz._driver.vtime import VirtualTimeLoop
from asgifuzz._driver.ws_drive import WsOutcome, drive_websocket
from asgifuzz.models import Case, Server
from asgifuzz.models._record import Recorder
from asgifuzz.models._websocket import Handshake, Session

#: Wall-clock seconds to wait for the real server's records, and for one session.
RECORD_WAIT, SESSION_BOUND = 10.0, 5.0
#: The session played first, its record replaced by the measured one.
WARM_UP = "/ws/close"


def _client(r: Record, *keys: str) -> Any:
    seen = [r["client"][k] for k in keys]
    return seen[0] if len(keys) == 1 else seen


#: Each claim: its name, the probe's path, and what it reads from the record.
WS_CLAIMS: tuple[tuple[str, str, Callable[[Record], Any]], ...] = (
    (
        "websocket scope['asgi']['spec_version']",
        "/ws/close",
        lambda r: r["spec_version"],
    ),
    ("websocket scope['extensions']", "/ws/close", lambda r: r["extensions"]),
    (
        "the close the client sees when the app closes with 4001 'app'",
        "/ws/close",
        lambda r: _client(r, "server_close"),
    ),
    (
        "send() of a frame after the app closed",
        "/ws/close",
        lambda r: r["send_after_close"],
    ),
    (
        "receive() twice after the app closed and the client answered",
        "/ws/close",
        lambda r: r["after_close"],
    ),
    (
        "receive() twice after the client dropped the connection (its code; does "
        "websocket.disconnect repeat?)",
        "/ws/drop",
        lambda r: r["after_drop"],
    ),
    (
        "send() after the client dropped the connection",
        "/ws/drop",
        lambda r: r["send_after_drop"],
    ),
    (
        "receive() twice after the client closed with 4000 'bye'",
        "/ws/client-close",
        lambda r: r["after_client_close"],
    ),
    (
        "send() after the client closed",
        "/ws/client-close",
        lambda r: r["send_after_client_close"],
    ),
    (
        "the handshake's status when the app returns without answering it",
        "/ws/no-accept",
        lambda r: _client(r, "status"),
    ),
    (
        "the handshake's status when the app raises before answering it",
        "/ws/raise-before",
        lambda r: _client(r, "status"),
    ),
    (
        "the handshake's status when the app closes before accepting",
        "/ws/reject",
        lambda r: _client(r, "status"),
    ),
    (
        "a denial response where advertised, else a close (status, body)",
        "/ws/deny",
        lambda r: _client(r, "status", "body"),
    ),
    (
        "the close the client sees when the app returns after accepting",
        "/ws/return-open",
        lambda r: _client(r, "server_close"),
    ),
    (
        "the close the client sees when the app raises after accepting",
        "/ws/raise-open",
        lambda r: _client(r, "server_close"),
    ),
    (
        "websocket.accept with a subprotocol the client did not offer",
        "/ws/subprotocol",
        lambda r: r["accept"],
    ),
)


def _probe_case(path: str, profile: str) -> Case:
    hs = Handshake(path=path, subprotocols=OFFERED.get(path, ()))
    return Case(
        scope="websocket",
        server=Server(profile),
        websocket=Session(handshake=hs, steps=WS_PATHS[path]),
    )


def ws_profile_records(profile: str) -> dict[str, Record]:
    """The probe's records on the driver's `FakeWsServer` with ``profile``, the
    driver's client playing each path's steps (on virtual time)."""
    records: dict[str, Record] = {}

    async def main() -> None:
        for path in WS_PATHS:
            app = WsProbeApp(lambda r: records.__setitem__(r["path"], r))
            case, rec = _probe_case(path, profile), Recorder()
            outcome = WsOutcome(case, "asyncio", rec)
            await drive_websocket(case, rec, outcome, "asyncio", app)
            v = outcome.view
            records[path]["client"] = {
                "status": v.status,
                "subprotocol": v.subprotocol,
                "body": v.denial_body.decode("latin-1"),
                "received": list(v.received),
                "server_close": None
                if v.server_close is None
                else list(v.server_close),
            }

    # As the driver runs a case (see conformance.profile_records).
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(main())
    return records


def ws_server_records(
    server: str, *, python: str = sys.executable
) -> tuple[dict[str, Record], str]:
    """The probe's records on the real ``server``, and its name and version."""
    with tempfile.TemporaryDirectory(prefix="asgifuzz-ws-conformance-") as folder:
        sink = Path(folder) / "records.jsonl"
        sink.touch()
        with running(server, ["--probe", str(sink)], python=python) as live:
            # A first session warms the server up (its first close handshake
            # is the slowest; autobahn gives the client 1 s to answer a close).
            play_ws(WARM_UP, live.port, SESSION_BOUND)
            clients = {p: play_ws(p, live.port, SESSION_BOUND) for p in WS_PATHS}
            deadline = time.monotonic() + RECORD_WAIT
            while len(sink.read_text().splitlines()) < len(WS_PATHS) + 1:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)  # the app writes its record once it is done
        lines = sink.read_text().splitlines()
    records = {r["path"]: r for r in map(json.loads, lines)}
    for path, record in records.items():
        record["client"] = clients[path]
    return records, f"{live.name} {live.version}"


def check_websocket(
    server: str, *, profile: str | None = None
) -> tuple[list[Mismatch], str]:
    """The websocket claims of ``profile`` (default: the server's own) that
    ``server`` breaks, and the server's name and version. A claim counts as
    broken when a second measurement breaks it too: on a loaded machine a
    client can be late to answer a close (autobahn, under daphne, drops the
    connection after 1 s), and a real difference shows every time."""
    profile = profile or server
    said = ws_profile_records(profile)
    seen, where = ws_server_records(server)
    out = compare(profile, said, seen, where)
    if out:  # a race that load decided (daphne drops a close answered after 1 s)
        again, _ = ws_server_records(server)
        twice = {m.claim for m in compare(profile, said, again, where)}
        out = [m for m in out if m.claim in twice]
    return out, where


def compare(
    profile: str, said: dict[str, Record], seen: dict[str, Record], where: str
) -> list[Mismatch]:
    """The claims on which ``said`` (the profile's records) and ``seen`` (the
    server's, ``where``) differ."""
    out = []
    for claim, path, read in WS_CLAIMS:
        says = read(said[path])
        does = (
            read(seen[path]) if path in seen else "no record (the probe did not finish)"
        )
        if says != does:
            out.append(Mismatch(profile, claim, says, does, where))
    return out
