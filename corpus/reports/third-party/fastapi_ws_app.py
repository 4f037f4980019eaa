"""The FastAPI app of fastapi-websocket-close-reason.md: the docs' websocket
route (a path parameter typed int, a receive_text/send_text loop), and one
HTTP route."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.get("/")
async def index() -> dict[str, str]:
    return {"ok": "yes"}


@app.websocket("/ws/{client_id}")
async def chat(websocket: WebSocket, client_id: int) -> None:
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_text()
            await websocket.send_text(f"client {client_id} wrote: {data}")
    except WebSocketDisconnect:
        pass
