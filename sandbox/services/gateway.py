"""The shop's front door: product reads through the cache, orders, search; rate limited."""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web

from sandbox.mechanisms import SingleFlight, TokenBucket
from sandbox.services.base import Service


class Gateway(Service):
    name = "gateway"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limiter: TokenBucket | None = None
        self.single_flight = SingleFlight()
        self.backend_fetches = self.metrics.counter(
            "sdlab_gateway_backend_fetches",
            "Product fetches that went past the cache to inventory.",
            ["service", "sku_class"],
        )
        self.limited = self.metrics.counter(
            "sdlab_rate_limited",
            "Requests refused by the rate limiter.",
            ["service"],
        )
        self.coalesced = self.metrics.gauge(
            "sdlab_coalesced_requests",
            "Reads that shared another's backend fetch (total).",
            ["service"],
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/products/{sku}", self.product),
            web.post("/orders", self.order),
            web.get("/search", self.search),
        ]

    def admit(self) -> None:
        rate = float(self.knobs["rate_limit_rps"])
        if rate <= 0:
            self.limiter = None
            return
        if self.limiter is None or self.limiter.rate != rate:
            self.limiter = TokenBucket(rate, burst=max(1.0, rate / 5))
        if not self.limiter.admit():
            self.limited.labels(self.name).inc()
            raise web.HTTPTooManyRequests(
                text='{"message": "rate limited"}', content_type="application/json"
            )

    async def product(self, request: web.Request) -> web.Response:
        self.admit()
        sku = request.match_info["sku"]
        trace = request["trace"]
        key = f"product:{sku}"
        if not self.knobs["cache_enabled"]:
            return web.json_response(await self.fetch(sku, trace))
        cache = self.dependencies["cache"]
        cached = await cache.call("GET", f"/cache/{key}", trace=trace)
        if cached and cached.get("hit"):
            return web.json_response(cached["value"])

        async def fill() -> Any:
            product = await self.fetch(sku, trace)
            ttl = float(self.knobs["cache_ttl_s"])
            if self.knobs["cache_ttl_jitter"]:
                ttl *= random.uniform(0.8, 1.2)  # noqa: S311
            # By default the gateway says when the entry expires, by its own clock; with
            # relative TTLs it says for how long, and the cache's clock alone decides.
            if self.knobs["cache_relative_ttl"]:
                entry = {"value": product, "ttl_s": ttl}
            else:
                entry = {"value": product, "expires_at": self.now() + ttl}
            await cache.call("PUT", f"/cache/{key}", json=entry, trace=trace)
            return product

        if self.knobs["coalescing"]:
            product = await self.single_flight.do(key, fill)
            self.coalesced.labels(self.name).set(self.single_flight.coalesced_total)
        else:
            product = await fill()
        return web.json_response(product)

    async def fetch(self, sku: str, trace: tuple[str, str]) -> Any:
        self.backend_fetches.labels(self.name, "hot" if sku == "1" else "other").inc()
        return await self.dependencies["inventory"].call("GET", f"/stock/{sku}", trace=trace)

    async def order(self, request: web.Request) -> web.Response:
        self.admit()
        body = await request.json()
        result = await self.dependencies["orders"].call(
            "POST", "/orders", json=body, trace=request["trace"]
        )
        return web.json_response(result, status=201)

    async def search(self, request: web.Request) -> web.Response:
        self.admit()
        query = request.query.get("q", "")
        # Sparse fieldsets: only what the results page shows (serialization-overhead).
        fields = "&fields=sku,name" if self.knobs["field_selection"] else ""
        result = await self.dependencies["inventory"].call(
            "GET", f"/search?q={query}{fields}", trace=request["trace"]
        )
        return web.json_response(result)
