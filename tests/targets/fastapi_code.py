"""A user's FastAPI app, for the tests of app mode (FastAPI is a test extra)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Literal

from fastapi import FastAPI, Path

app = FastAPI()

#: The parameters the endpoints were given, with their types.
SEEN: list[tuple[str, object]] = []


class Color(enum.StrEnum):
    red = "red"
    green = "green"


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    assert isinstance(item_id, int)
    SEEN.append(("item_id", item_id))
    return {"id": item_id}


@app.get("/sized/{n}")
async def sized(n: Annotated[int, Path(ge=3, le=9)]) -> dict[str, int]:
    assert 3 <= n <= 9
    SEEN.append(("n", n))
    return {"n": n}


@app.get("/paint/{color}/{finish}")
async def paint(color: Color, finish: Literal["matte", "gloss"]) -> dict[str, str]:
    SEEN.append(("color", color))
    return {"color": color.value, "finish": finish}


@app.get("/orders/{order}/{ratio}")
async def order(order: uuid.UUID, ratio: float) -> dict[str, str]:
    assert isinstance(order, uuid.UUID)
    assert isinstance(ratio, float)
    SEEN.append(("order", order))
    return {"order": str(order)}


@app.get("/health")
async def health() -> str:
    return "ok"
