"""A bounded in-memory queue with long-polling consumers."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from aiohttp import web

from sandbox.server import json_response
from sandbox.services.base import Service

CAPACITY = 10_000


class Queue(Service):
    name = "queue"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items: deque[tuple[float, Any]] = deque()
        self.arrived = asyncio.Event()
        m = self.metrics
        self.depth = m.gauge("sdlab_queue_depth", "Messages waiting.", ["service"])
        self.oldest = m.gauge(
            "sdlab_queue_oldest_age_seconds", "Age of the oldest waiting message.", ["service"]
        )
        self.enqueued = m.counter("sdlab_queue_enqueued", "Messages accepted.", ["service"])
        self.dequeued = m.counter(
            "sdlab_queue_dequeued", "Messages handed to a consumer.", ["service"]
        )
        self.refused = m.counter(
            "sdlab_queue_refused", "Messages refused because the queue was full.", ["service"]
        )
        # Consumers asleep in /wait (thundering-herd): an arrival wakes one of them, or all.
        self.sleepers: deque[tuple[asyncio.Future[None], web.Request]] = deque()
        self.wakeups = m.counter(
            "sdlab_queue_wakeups", "Sleeping consumers woken by an arrival.", ["service"]
        )
        self.empty_claims = m.counter(
            "sdlab_queue_empty_claims",
            "Claims (dequeue without waiting) that found nothing: a wake-up wasted.",
            ["service"],
        )
        self.wakeups.labels(self.name)
        self.empty_claims.labels(self.name)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/enqueue", self.enqueue),
            web.get("/dequeue", self.dequeue),
            web.get("/wait", self.wait),
        ]

    async def on_start(self) -> None:
        self.background.append(asyncio.create_task(self.gauges()))

    async def gauges(self) -> None:
        while True:
            self.depth.labels(self.name).set(len(self.items))
            age = time.monotonic() - self.items[0][0] if self.items else 0.0
            self.oldest.labels(self.name).set(age)
            await self.figures_due()

    async def enqueue(self, request: web.Request) -> web.Response:
        message = await request.json()
        if len(self.items) >= min(CAPACITY, int(self.knobs["queue_capacity"])):
            self.refused.labels(self.name).inc()
            return json_response({"message": "queue full"}, status=503)
        self.items.append((time.monotonic(), message))
        self.enqueued.labels(self.name).inc()
        self.arrived.set()
        self.wake()
        return json_response({"depth": len(self.items)}, status=202)

    async def dequeue(self, request: web.Request) -> web.Response:
        wait_s = min(5.0, max(0.0, float(request.query.get("wait_ms", "1000")) / 1000))
        deadline = time.monotonic() + wait_s
        while not self.items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if wait_s == 0:
                    self.empty_claims.labels(self.name).inc()
                return json_response({"message": None})
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                return json_response({"message": None})
        enqueued_at, message = self.items.popleft()
        self.dequeued.labels(self.name).inc()
        return json_response({"message": message, "waited_s": time.monotonic() - enqueued_at})

    def wake(self) -> None:
        """Wakes the oldest sleeper, or every sleeper with `queue_wake` set to all (a
        notify_all): they all come to claim one message and all but one find nothing."""
        everyone = self.knobs["queue_wake"] == "all"
        while self.sleepers:
            sleeper, request = self.sleepers.popleft()
            gone = request.transport is None or request.transport.is_closing()
            if sleeper.done() or gone:  # a consumer that hung up cannot take the wake-up
                continue
            sleeper.set_result(None)
            self.wakeups.labels(self.name).inc()
            if not everyone:
                return

    async def wait(self, request: web.Request) -> web.Response:
        """Sleeps until a message arrives (or `wait_ms` passes); the consumer then claims it
        with a dequeue that does not wait."""
        if self.items:
            return json_response({"ready": True})
        wait_s = min(30.0, max(0.0, float(request.query.get("wait_ms", "1000")) / 1000))
        sleeper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((sleeper, request))
        try:
            await asyncio.wait({sleeper}, timeout=wait_s)
        finally:
            if not sleeper.done():
                sleeper.cancel()
                if (sleeper, request) in self.sleepers:
                    self.sleepers.remove((sleeper, request))
        return json_response({"ready": sleeper.done() and not sleeper.cancelled()})
