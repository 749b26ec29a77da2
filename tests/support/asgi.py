"""Drives an ASGI WebSocket application in-process, through its real middleware."""

import asyncio
from typing import Any

TIMEOUT = 10


async def websocket_open(
    app: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[bool, int | None, list[dict]]:
    """Connects; returns (accepted, close code or None, frames sent before the close)."""
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    outbox: asyncio.Queue[dict] = asyncio.Queue()
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "subprotocols": [],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "websocket.connect"})
    accepted, code, frames = False, None, []
    try:
        while True:
            message = await asyncio.wait_for(outbox.get(), TIMEOUT)
            if message["type"] == "websocket.accept":
                accepted = True
            elif message["type"] == "websocket.send":
                frames.append(message)
                break
            elif message["type"] == "websocket.close":
                code = message.get("code", 1000)
                break
    finally:
        await inbox.put({"type": "websocket.disconnect", "code": 1000})
        try:
            await asyncio.wait_for(task, TIMEOUT)
        except (asyncio.CancelledError, Exception):  # the app may end any way once disconnected
            task.cancel()
    return accepted, code, frames
