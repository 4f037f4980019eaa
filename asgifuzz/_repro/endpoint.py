"""The templates of a reproducer's endpoint and its background task, mirroring
`asgifuzz.models._endpoint` minus the recording."""

from __future__ import annotations

from asgifuzz._repro.render import PAUSE, boom, render
from asgifuzz.models import Endpoint
from asgifuzz.models._parts import EXTENSION_ENDPOINT_KINDS

ENDPOINT = f"""\
async def endpoint(request: Request) -> Response:
    {PAUSE.replace("$n", "$before")}  #?before
    SEEN["endpoint ran"] = True  #?see_disconnect
    SEEN["tasks attached"] += 1  #?bg&see_background
    background = BackgroundTask(endpoint_task)  #?bg
    $boom  #?raise
    #?streams
    async def chunks() -> AsyncIterator[bytes]:  #?streams
        for i in range($chunks):  #?some_chunks
            if i:  #?interval
                await anyio.sleep($interval)  # virtual seconds between chunks  #?interval
                SEEN["stream"].append((SEEN["delivered"], SEEN["client gone"]))  #?interval&see_streamed
            yield $chunk  #?some_chunks
            {PAUSE.replace("$n", "$after")}  #?some_chunks&after
        $boom_stream  #?raise_streaming
        return  # an empty stream  #?no_chunks&stream
        yield b""  # never reached: it makes chunks() an async generator  #?no_chunks
    #?streams
    return StreamingResponse(chunks(), media_type="$media_type"$bg)  #?streams
    body = await request.body()  #?echo&!respond
    body = b""  #?stream_body&!respond
    async for chunk in request.stream():  #?stream_body&!respond
        body += chunk  #?stream_body&!respond
    try:  #?respond
        body = await request.body()  #?echo&respond
        body = b""  #?stream_body&respond
        async for chunk in request.stream():  #?stream_body&respond
            body += chunk  #?stream_body&respond
    except ClientDisconnect:  #?respond
        return PlainTextResponse("client gone", status_code=400$bg)  #?respond
    SEEN["reads"].append(("endpoint", body))  #?reads_body&see_reads
    while not await request.is_disconnected():  # noqa: ASYNC110 (it polls)  #?poll_disconnect
        await anyio.sleep(1)  #?poll_disconnect
    while (await request.receive())["type"] != "http.disconnect":  #?wait_disconnect
        pass  #?wait_disconnect
    SEEN["endpoint saw the disconnect"] = True  #?waits&see_disconnect
    return PlainTextResponse("bye"$bg)  #?waits
    {PAUSE.replace("$n", "$after")}  #?after_return
    return PlainTextResponse(hashlib.sha256(body).hexdigest()$bg)  #?reads_body
    return PlainTextResponse($content$status$bg)  #?plain
    return JSONResponse({{"ok": True}}$bg)  #?json
    return Response(status_code=$code$bg)  #?empty
    return TrailersResponse($body$bg)  #?trailers
    return FileResponse(file_of($body)$bg)  #?pathsend
    return EarlyHintResponse($body$bg)  #?early_hint"""

ENDPOINT_TASK = '''\
async def endpoint_task() -> None:
    """The endpoint's background task."""
    SEEN["tasks run"] += 1  #?see_background
    started = "response complete when the endpoint's task started"  #?see_background
    SEEN[started] = SEEN["response complete"]  #?see_background
    $boom_task  #?bg_raise
    await anyio.sleep(1)  # one virtual second of work  #?bg_wait
    await anyio.lowlevel.checkpoint()  # a little async work  #?bg_checkpoint
    SEEN["tasks finished"] += 1  #?see_background&!bg_raise
    ended = "response complete when the endpoint's task ended"  #?see_background&!bg_raise
    SEEN[ended] = SEEN["response complete"]  #?see_background&!bg_raise'''

SYNC_ENDPOINT = '''\
def endpoint(request: Request) -> Response:
    """A sync endpoint: Starlette runs it with anyio.to_thread.run_sync."""
    SEEN["tasks attached"] += 1  #?bg&see_background
    return PlainTextResponse("sync"$bg)'''

#: Worker threads run in the loop (a sync endpoint, FileResponse's os.stat).
IN_LOOP = '''\
async def run_sync_in_loop(func: Any, *args: Any, **kwargs: Any) -> Any:
    """anyio.to_thread.run_sync, in the event loop: on virtual time the clock would
    jump to the client's patience while a real worker thread works."""
    await anyio.lowlevel.checkpoint()  # the real one is a checkpoint too
    return func(*args)


anyio.to_thread.run_sync = run_sync_in_loop'''


#: The kinds that return a response after the endpoint's second pause.
_RETURNS = ("plain", "json", "empty", *EXTENSION_ENDPOINT_KINDS)


def endpoint_source(ep: Endpoint, obs: set[str]) -> str:
    kind, (before, after) = ep.kind, ep.pauses
    if kind == "zerocopysend":
        raise ValueError(
            "field 'endpoint.kind' is 'zerocopysend', which no script renders yet "
            "(its scripted server takes no http.response.zerocopysend); replay the "
            "case with asgifuzz replay instead"
        )
    bg = ep.background != "none" and kind != "raise"
    reads = kind in ("echo", "stream_body")
    streams = kind in ("stream", "raise_streaming")
    conditions = {
        "before": before > 0,
        "after": after > 0,
        "after_return": after > 0 and (reads or kind in _RETURNS),
        "bg": bg,
        "streams": streams,
        "some_chunks": streams and ep.chunks > 0,
        "no_chunks": streams and ep.chunks == 0,
        "interval": streams and ep.interval > 0 and ep.chunks > 1,
        "reads_body": reads,
        "respond": reads and ep.on_disconnect == "respond",
        "waits": kind in ("poll_disconnect", "wait_disconnect"),
    }
    flags = {kind, f"bg_{ep.background}", *(f"see_{o}" for o in obs)}
    flags |= {name for name, holds in conditions.items() if holds}
    values = {
        "before": before,
        "after": after,
        "bg": ", background=background" if bg else "",
        "boom": boom("the endpoint", obs, ep.group),
        "boom_stream": boom("the endpoint (while streaming)", obs, ep.group),
        "boom_task": boom("the endpoint's background task", obs),
        "chunks": ep.chunks,
        "interval": ep.interval,
        "media_type": ep.media_type,
        "status": "" if ep.status == 200 else f", status_code={ep.status}",
        "code": ep.status,
        "chunk": 'b"data: %d\\n\\n" % i' if ep.size is None else _sized(ep),
        "content": '"hello"' if ep.size is None else _sized(ep),
        "body": 'b"hello"' if ep.size is None else _sized(ep),
    }
    task = render(ENDPOINT_TASK, flags, **values) + "\n\n\n" if bg else ""
    if kind == "sync":
        values["bg"] = ", background=BackgroundTask(endpoint_task)" if bg else ""
        return task + render(SYNC_ENDPOINT, flags, **values) + "\n\n\n" + IN_LOOP
    source = task + render(ENDPOINT, flags, **values)
    return source + ("\n\n\n" + IN_LOOP if kind == "pathsend" else "")


def _sized(ep: Endpoint) -> str:
    """The expression of `asgifuzz.models._parts.response_content`'s bytes."""
    if ep.compressible:
        return f'(b"hello " * {(ep.size or 0) // 6 + 1})[:{ep.size}]'
    return f'hashlib.shake_256(b"asgifuzz").digest({ep.size})'
