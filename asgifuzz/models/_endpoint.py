"""Endpoint models: Starlette endpoints that record what they read, made and ran."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)

from asgifuzz._errors import ModelError
from asgifuzz.models._extensions import (
    EarlyHintResponse,
    TrailersResponse,
    ZeroCopyResponse,
    file_of,
)
from asgifuzz.models._middleware import pause
from asgifuzz.models._parts import Endpoint, response_content
from asgifuzz.models._record import Background, Read, Recorder

#: Virtual seconds a ``wait`` background task takes.
BACKGROUND_WAIT = 1.0
#: Virtual seconds between a ``poll_disconnect`` endpoint's polls.
POLL_INTERVAL = 1.0


def _error(rec: Recorder, origin: str, group: bool) -> BaseException:
    error = ModelError(origin)
    if group:
        return rec.model_raise(
            ExceptionGroup(f"group raised on purpose by {origin}", [error])
        )
    return rec.model_raise(error)


def _background(model: Endpoint, rec: Recorder) -> BackgroundTask | None:
    if model.background == "none":
        return None
    record = Background("endpoint")
    rec.background.append(record)

    async def task() -> None:
        record.runs += 1
        record.started = rec.note("background task of the endpoint starts")
        record.response_complete_at_start = rec.response_complete is not None
        if model.background == "raise":
            record.raised = _error(rec, "the endpoint's background task", False)
            raise record.raised
        if model.background == "wait":
            await anyio.sleep(BACKGROUND_WAIT)
        else:
            await anyio.lowlevel.checkpoint()
        record.finished = rec.note("background task of the endpoint ends")
        record.response_complete_at_end = rec.response_complete is not None

    return BackgroundTask(task)


def build_endpoint(model: Endpoint, rec: Recorder) -> Callable[..., Any]:
    """A Starlette endpoint (async, or sync for ``kind="sync"``) following ``model``."""
    before, after = model.pauses
    background = _background(model, rec)
    kind = model.kind

    if kind == "sync":

        def sync_endpoint(request: Request) -> Response:
            rec.note("sync endpoint ran in a worker thread")
            return PlainTextResponse("sync", background=background)

        return sync_endpoint

    async def read_body(request: Request) -> Read | None:
        read = Read("endpoint", b"", False)
        rec.reads.append(read)
        try:
            if kind == "echo":
                read.data = await request.body()
            else:
                async for chunk in request.stream():
                    read.data += chunk
        except ClientDisconnect:
            read.error = "ClientDisconnect"
            rec.note("endpoint got ClientDisconnect")
            if model.on_disconnect == "raise":
                raise
            return None
        read.complete = True
        return read

    sized = (
        None if model.size is None else response_content(model.size, model.compressible)
    )

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(model.chunks):
            if i and model.interval:
                await anyio.sleep(model.interval)
            rec.chunks_made.append(rec.note(f"endpoint makes chunk {i}"))
            yield b"data: %d\n\n" % i if sized is None else sized
            await pause(after)
        if kind == "raise_streaming":
            raise _error(rec, "the endpoint (while streaming)", model.group)

    async def endpoint(request: Request) -> Response:
        await pause(before)
        if kind == "raise":
            raise _error(rec, "the endpoint", model.group)
        if kind in ("stream", "raise_streaming"):
            return StreamingResponse(
                chunks(), media_type=model.media_type, background=background
            )
        if kind in ("echo", "stream_body"):
            read = await read_body(request)
            await pause(after)
            if read is None:
                return PlainTextResponse(
                    "client gone", status_code=400, background=background
                )
            digest = hashlib.sha256(read.data).hexdigest()
            return PlainTextResponse(digest, background=background)
        if kind == "poll_disconnect":
            while not await request.is_disconnected():  # noqa: ASYNC110 (the model polls on purpose)
                await anyio.sleep(POLL_INTERVAL)
            rec.disconnects_seen.append(
                ("endpoint", rec.note("endpoint saw disconnect"))
            )
            return PlainTextResponse("bye", background=background)
        if kind == "wait_disconnect":
            while (await request.receive())["type"] != "http.disconnect":
                pass
            rec.disconnects_seen.append(
                ("endpoint", rec.note("endpoint saw disconnect"))
            )
            return PlainTextResponse("bye", background=background)
        await pause(after)
        if kind == "json":
            return JSONResponse({"ok": True}, background=background)
        if kind == "empty":
            return Response(status_code=model.status, background=background)
        content = b"hello" if sized is None else sized
        if kind == "trailers":
            return TrailersResponse(content, background=background)
        if kind == "pathsend":
            return FileResponse(file_of(content), background=background)
        if kind == "zerocopysend":
            return ZeroCopyResponse(content, background=background)
        if kind == "early_hint":
            return EarlyHintResponse(content, background=background)
        return PlainTextResponse(
            "hello" if sized is None else sized,
            status_code=model.status,
            background=background,
        )

    return endpoint
