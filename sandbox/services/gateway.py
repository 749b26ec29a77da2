"""The shop's front door: product reads through the cache, orders, search; rate limited."""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web

from sandbox.mechanisms import Pool, Rejected, SingleFlight, TokenBucket
from sandbox.services.base import Handler, Service


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
        self.workers: Pool[int] | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/products/{sku}", self.on_worker(self.product)),
            web.post("/orders", self.on_worker(self.order)),
            web.get("/search", self.on_worker(self.search)),
        ]

    def on_worker(self, handler: Handler) -> Handler:
        """With `server_workers` set, every route shares that many workers, as a server's
        thread pool does: a request waits for a free one, and past the wait gets a 503."""

        async def handle(request: web.Request) -> web.StreamResponse:
            size = int(self.knobs["server_workers"])
            if size <= 0:
                return await handler(request)
            wait_s = float(self.knobs["server_worker_wait_ms"]) / 1000
            if self.workers is None or self.workers.size != size:
                self.workers = Pool(list(range(size)), wait_s)
            workers = self.workers
            workers.timeout_s = wait_s
            try:
                worker = await workers.acquire()
            except Rejected:
                self.metrics.pool_timeouts.labels(self.name, "workers").inc()
                raise web.HTTPServiceUnavailable(
                    text='{"message": "no free worker"}', content_type="application/json"
                ) from None
            self.workers_gauges(workers)
            try:
                return await handler(request)
            finally:
                workers.release(worker)
                self.workers_gauges(workers)

        return handle

    def workers_gauges(self, workers: Pool[int]) -> None:
        self.metrics.pool_in_use.labels(self.name, "workers").set(workers.in_use)
        self.metrics.pool_waiting.labels(self.name, "workers").set(len(workers.waiters))

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
        result = await self.dependencies["inventory"].call(
            "GET", f"/search?q={query}", trace=request["trace"]
        )
        return web.json_response(result)
