"""Takes orders: reserves stock in inventory, then queues the order for fulfilment."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sandbox.server import json_response
from sandbox.services.base import DependencyError, Service


class Orders(Service):
    name = "orders"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handoffs = self.metrics.counter(
            "sdlab_orders_handoffs",
            "Orders handed to the queue after the answer (enqueue_async), by outcome.",
            ["service", "outcome"],
        )
        self.pending: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/orders", self.create)]

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        sku, quantity = str(body.get("sku", "")), int(body.get("quantity", 1))
        if not sku or quantity < 1:
            return json_response(
                {"message": "sku and a positive quantity are required"}, status=422
            )
        trace = request["trace"]
        reservation = {"sku": sku, "quantity": quantity, "request_id": body.get("request_id")}
        reserved = await self.dependencies["inventory"].call(
            "POST", "/reserve", json=reservation, trace=trace, expect=("stock",)
        )
        if reserved.get("replayed"):
            # A retry of an order already taken: the first attempt queues it; answer as it did.
            return json_response(
                {"sku": sku, "quantity": quantity, "stock": reserved["stock"]}, status=201
            )
        message = {"sku": sku, "quantity": quantity, "at": self.now()}
        if self.knobs["enqueue_async"]:
            # Off the critical path: the user has the answer while the queue is still slow.
            task = asyncio.create_task(self.hand_off(message, trace))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
        else:
            await self.dependencies["queue"].call("POST", "/enqueue", json=message, trace=trace)
        return json_response(
            {"sku": sku, "quantity": quantity, "stock": reserved["stock"]}, status=201
        )

    async def hand_off(self, message: dict[str, Any], trace: tuple[str, str]) -> None:
        try:
            await self.dependencies["queue"].call("POST", "/enqueue", json=message, trace=trace)
            self.handoffs.labels(self.name, "ok").inc()
        except DependencyError as exc:
            self.handoffs.labels(self.name, "error").inc()
            self.logs.log("error", "hand-off to the queue failed", error=str(exc))
