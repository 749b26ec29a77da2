"""One subscription per ASGI process and lab session, shared by every viewer in it.

Every viewer of a session receives the same frame. Through the channel layer, each
viewer's own channel would cost Redis a delivery and the process a receive per viewer:
a thousand viewers, a thousand round trips a second, drained one at a time. Here the
first viewer of a session in a process subscribes one channel to the session's group;
its frames are handed to every local viewer in memory, and the subscription ends with
the last viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class Fanout:
    def __init__(self) -> None:
        self.viewers: dict[str, set[Deliver]] = {}
        self.pumps: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.lock = asyncio.Lock()

    async def join(self, group: str, deliver: Deliver) -> None:
        async with self.lock:
            self.viewers.setdefault(group, set()).add(deliver)
            if group in self.pumps:
                return
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
            self.pumps[group] = (channel, asyncio.create_task(self.pump(group, channel)))

    async def leave(self, group: str, deliver: Deliver) -> None:
        async with self.lock:
            viewers = self.viewers.get(group, set())
            viewers.discard(deliver)
            if viewers or group not in self.pumps:
                return
            del self.viewers[group]
            channel, task = self.pumps.pop(group)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await get_channel_layer().group_discard(group, channel)

    async def pump(self, group: str, channel: str) -> None:
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: try again, do not lose the pump
                log.exception("lab fan-out receive failed", extra={"group": group})
                await asyncio.sleep(0.5)
                continue
            if "frame" in message and "text" not in message:
                # encoded once for every viewer here, not once per viewer
                message = {**message, "text": json.dumps(message["frame"])}
            viewers = list(self.viewers.get(group, ()))
            results = await asyncio.gather(
                *(deliver(message) for deliver in viewers), return_exceptions=True
            )
            for result in results:
                if isinstance(result, Exception):
                    log.info("a viewer could not be sent a frame", extra={"error": str(result)})


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def fanout() -> Fanout:
    """This event loop's fan-out (one per ASGI process in production)."""
    loop = asyncio.get_running_loop()
    if loop not in _by_loop:
        _by_loop[loop] = Fanout()
    return _by_loop[loop]
