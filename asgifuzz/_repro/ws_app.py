"""The templates of a websocket reproducer's endpoint and of the websocket-aware
layers (family ``ws``), mirroring `asgifuzz.models._ws_live` minus the recording."""

from __future__ import annotations

from asgifuzz._repro.render import PAUSE, boom, lit, render
from asgifuzz.models import Layer
from asgifuzz.models._websocket import (
    AUTH_HEADER,
    DENIAL_BODY,
    DENIAL_STATUS,
    REWRITE_HEADER,
    REWRITE_SUBPROTOCOL,
    WsEndpoint,
)
from asgifuzz.models._ws_live import AUTH_CODE, AUTH_REASON

WS_ENDPOINT = f"""\
async def endpoint(websocket: WebSocket) -> None:
    $boom  #?raise_before
    # Where the server takes denial responses (Starlette without  #?deny
    # send_denial_response closes instead).  #?deny
    extensions = websocket.scope.get("extensions", {{}})  #?deny
    if "websocket.http.response" in extensions and hasattr(  #?deny
        websocket, "send_denial_response"  #?deny
    ):  #?deny
        denial = Response({lit(DENIAL_BODY)}, status_code={DENIAL_STATUS})  #?deny
        await websocket.send_denial_response(denial)  #?deny
        return  #?deny
    await websocket.close($code, $reason)  #?reject|deny
    await websocket.accept($subprotocol)  #?accepts
    async for text in websocket.iter_text():  # as Starlette's docs write it  #?iterate
        await websocket.send_text(text)  #?iterate
    for i in range($count):  #?broadcast
        await websocket.send_text(f"message {{i}}")  #?broadcast
    await websocket.close($code, $reason)  #?broadcast|close
    while True:  #?reads
        message = await websocket.receive()  #?reads
        if message["type"] == "websocket.disconnect":  #?reads
            return  #?reads
        $boom  #?raise_after
        if message.get("bytes") is not None:  #?echo
            await websocket.send_bytes(message["bytes"])  #?echo
        else:  #?echo
            await websocket.send_text(message.get("text") or "")  #?echo"""

WS_LAYER = f"""\
class $name:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        {PAUSE.replace("$n", "$before")}  #?before
        headers = [name for name, _ in scope["headers"]]  #?auth
        if {lit(AUTH_HEADER.encode())} not in headers:  #?auth
            await receive()  # websocket.connect  #?auth
            close = {{"type": "websocket.close", "code": {AUTH_CODE}}}  #?auth
            await send({{**close, "reason": {lit(AUTH_REASON)}}})  #?auth
            return  #?auth
        scope = dict(scope)  #?rewrite
        scope["headers"] = [*scope["headers"], ({lit(REWRITE_HEADER.encode())}, b"1")]  #?rewrite
        scope["subprotocols"] = list(reversed(scope.get("subprotocols", [])))  #?rewrite
        inner_send = send  #?rewrite
        #?rewrite
        async def send(message: Message) -> None:  #?rewrite
            if message["type"] == "websocket.accept":  #?rewrite
                added = ({lit(REWRITE_HEADER.encode())}, {lit(REWRITE_SUBPROTOCOL.encode())})  #?rewrite
                message = {{**message, "headers": [*message.get("headers", []), added]}}  #?rewrite
            await inner_send(message)  #?rewrite
        #?rewrite
        first = [await receive()]  # websocket.connect, handed on below  #?read_first
        inner_receive = receive  #?read_first
        #?read_first
        async def receive() -> Message:  #?read_first
            return first.pop() if first else await inner_receive()  #?read_first
        #?read_first
        await self.app(scope, receive, send)
        {PAUSE.replace("$n", "$after")}  #?after"""


def ws_endpoint_source(ep: WsEndpoint, obs: set[str]) -> str:
    """The endpoint of ``ep``, as a ``WebSocketRoute`` calls it."""
    kind = ep.kind
    flags = {kind, *(f"see_{o}" for o in obs)}
    if kind not in ("reject", "deny", "raise_before"):
        flags.add("accepts")
    if kind in ("echo", "read_all", "raise_after"):
        flags.add("reads")
    return render(
        WS_ENDPOINT,
        flags,
        boom=boom("the websocket endpoint", obs),
        code=ep.code,
        reason=lit(ep.reason),
        subprotocol=f"subprotocol={lit(ep.subprotocol)}" if ep.subprotocol else "",
        count=ep.count,
    )


def ws_layer_source(name: str, layer: Layer) -> str:
    """A ``ws.*`` layer's class."""
    before, after = layer.pauses
    flags = {layer.behaviour}
    flags |= {"before"} if before else set()
    flags |= {"after"} if after else set()
    return render(WS_LAYER, flags, name=name, before=before, after=after)
