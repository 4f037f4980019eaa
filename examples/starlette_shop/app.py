"""A small Starlette shop with a stack of third-party-style middleware.

Fuzz it whole:  asgifuzz fuzz --app app:app --max-time 30   (from this folder)
and its websocket route:  asgifuzz fuzz --app app:app --scope websocket
"""

from __future__ import annotations

import json
from typing import Any

from middleware import (
    CancelOnDisconnectMiddleware,
    RequestIdMiddleware,
    TimingMiddleware,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("welcome to the shop")


async def create_order(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        order = json.loads(body or b"{}")
    except ValueError:
        return JSONResponse({"error": "invalid JSON"}, status_code=400)
    return JSONResponse({"received": len(body), "order": order}, status_code=201)


async def order_updates(websocket: WebSocket) -> None:
    """Live order status: each order id the client sends is acknowledged."""
    await websocket.accept()
    async for order_id in websocket.iter_text():
        await websocket.send_text(f"order {order_id}: received")


def make_app(cancel_on_disconnect: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/orders", create_order, methods=["POST"]),
            WebSocketRoute("/ws/orders", order_updates),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(TimingMiddleware),
            Middleware(GZipMiddleware, minimum_size=100),
            Middleware(cancel_on_disconnect),
        ],
    )


app = make_app(CancelOnDisconnectMiddleware)
