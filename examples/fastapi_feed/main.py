"""A small FastAPI feed service with third-party-style middleware.

Fuzz it whole:  asgifuzz fuzz --app main:app --max-time 30   (from this folder)
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from middleware import TimeoutMiddleware
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float = 0.0


class Ticks:
    """The event stream: an iterator class, not an async generator. (On trio,
    Starlette's StreamingResponse leaves an async generator unclosed when the
    client leaves: asgifuzz's corpus entry streaming-body-iterator-not-closed-trio.)"""

    def __init__(self, count: int) -> None:
        self.count, self.sent = count, 0

    def __aiter__(self) -> Ticks:
        return self

    async def __anext__(self) -> str:
        if self.sent == self.count:
            raise StopAsyncIteration
        if self.sent:
            await anyio.sleep(1)
        self.sent += 1
        return f"data: tick {self.sent}\n\n"


def make_app(timeout_middleware: Any) -> FastAPI:
    app = FastAPI()
    items: list[Item] = []

    @app.get("/items")
    async def list_items() -> list[Item]:
        return items

    @app.post("/items", status_code=201)
    async def add_item(item: Item) -> Item:
        return item

    @app.get("/feed")
    async def feed() -> StreamingResponse:
        return StreamingResponse(Ticks(5), media_type="text/event-stream")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Any:
        # FastAPI's own handler answers a non-UTF-8 body with a 500: it decodes
        # the echoed input as UTF-8 (fastapi/fastapi#13111; asgifuzz --app finds
        # it as I1:UnicodeDecodeError). Leave the raw input out.
        errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(timeout_middleware, timeout=3.0)
    app.add_middleware(CORSMiddleware, allow_origins=["https://example.com"])

    @app.middleware("http")
    async def process_time(request: Request, call_next: Any) -> Any:
        # The FastAPI docs' example: a BaseHTTPMiddleware under the hood.
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["x-process-time"] = f"{time.perf_counter() - start:.4f}"
        return response

    return app


app = make_app(TimeoutMiddleware)
