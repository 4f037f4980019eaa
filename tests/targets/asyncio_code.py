"""A user's app that calls asyncio directly (it cannot run on trio)."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def sleepy(request: Request) -> PlainTextResponse:
    await asyncio.sleep(0)
    return PlainTextResponse("slept")


app = Starlette(routes=[Route("/sleepy", sleepy)])
