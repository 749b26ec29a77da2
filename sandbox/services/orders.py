"""Takes orders: reserves stock in inventory, then queues the order for fulfilment."""

from __future__ import annotations

from aiohttp import web

from sandbox.services.base import Service


class Orders(Service):
    name = "orders"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/orders", self.create)]

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        sku, quantity = str(body.get("sku", "")), int(body.get("quantity", 1))
        if not sku or quantity < 1:
            return web.json_response(
                {"message": "sku and a positive quantity are required"}, status=422
            )
        trace = request["trace"]
        reserved = await self.dependencies["inventory"].call(
            "POST", "/reserve", json={"sku": sku, "quantity": quantity}, trace=trace
        )
        await self.dependencies["queue"].call(
            "POST",
            "/enqueue",
            json={"sku": sku, "quantity": quantity, "at": self.now()},
            trace=trace,
        )
        return web.json_response(
            {"sku": sku, "quantity": quantity, "stock": reserved["stock"]}, status=201
        )
