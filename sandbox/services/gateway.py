"""The shop's front door: product reads through the cache, orders, search; rate limited."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp import web

from sandbox.mechanisms import Pool, Rejected, SingleFlight, TokenBucket, TTLCache
from sandbox.server import json_response
from sandbox.services.base import DependencyError, Handler, Service
from sandbox.services.freshness import Freshness


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
        # stale-read, cache-invalidation-race, hot-key
        self.freshness = Freshness(
            self.metrics.counter(
                "sdlab_gateway_stale_reads",
                "Reads served from a cache with stock an order already took, by cause.",
                ["service", "cause"],
            ),
            self.name,
        )
        self.l1: TTLCache[Any] = TTLCache(max_entries=256)
        self.l1_reads = self.metrics.counter(
            "sdlab_gateway_l1_reads",
            "Product reads looked up in the gateway's own memory, by outcome.",
            ["service", "outcome"],
        )
        for outcome in ("hit", "miss"):
            self.l1_reads.labels(self.name, outcome)
        self.hedged = self.metrics.counter(
            "sdlab_gateway_hedged_requests",
            "Second copies sent of stock reads slow to answer (hedged requests).",
            ["service"],
        )
        self.losers: set[asyncio.Future[Any]] = set()  # hedges' slower copies, left to finish
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
        if int(self.knobs["fanout"]) > 0:
            product, related = await asyncio.gather(
                self.product_read(sku, trace), self.related(sku, trace)
            )
            return json_response({**product, "related": related})
        return json_response(await self.product_read(sku, trace))

    async def product_read(self, sku: str, trace: tuple[str, str]) -> Any:
        key = f"product:{sku}"
        if not self.knobs["cache_enabled"]:
            return await self.fetch(sku, trace)
        l1_ttl_s = float(self.knobs["l1_cache_ttl_ms"]) / 1000
        if l1_ttl_s > 0:
            near = self.l1.get(key)
            self.l1_reads.labels(self.name, "hit" if near is not None else "miss").inc()
            if near is not None:
                self.freshness.read_check(sku, near)
                return near
        cache = self.dependencies["cache"]
        leases = bool(self.knobs["cache_leases"])
        lookup = f"/cache/{key}?lease=1" if leases else f"/cache/{key}"
        cached = await cache.call("GET", lookup, trace=trace)
        if cached and cached.get("hit"):
            self.freshness.read_check(sku, cached["value"])
            if l1_ttl_s > 0:
                self.l1.set(key, cached["value"], l1_ttl_s)
            return cached["value"]
        lease = cached.get("lease") if leases and cached else None

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
            if leases and lease is None:
                return product  # another miss holds the lease: it fills, this one reads through
            if lease is not None:
                entry["lease"] = lease  # refused if a write deleted the key since the miss
            stored = await cache.call("PUT", f"/cache/{key}", json=entry, trace=trace)
            if stored and stored.get("stored"):
                self.freshness.fill_done(sku)
            return product

        if self.knobs["coalescing"]:
            product = await self.single_flight.do(key, fill)
            self.coalesced.labels(self.name).set(self.single_flight.coalesced_total)
        else:
            product = await fill()
        return product

    async def related(self, sku: str, trace: tuple[str, str]) -> list[Any]:
        """The page also shows the stock of `fanout` related products, fetched at once from
        inventory: it waits for the slowest of them."""
        base = int(sku) if sku.isdigit() else 0
        skus = [str(2 + (base * 31 + i * 97) % 998) for i in range(int(self.knobs["fanout"]))]
        return list(await asyncio.gather(*(self.stock_hedged(s, trace) for s in skus)))

    async def stock_hedged(self, sku: str, trace: tuple[str, str]) -> Any:
        """A stock read (idempotent); with hedge_after_ms, one unanswered that long gets a
        second copy, the first answer wins and the slower copy finishes unread."""
        inventory = self.dependencies["inventory"]
        after = float(self.knobs["hedge_after_ms"]) / 1000
        if after <= 0:
            return await inventory.call("GET", f"/stock/{sku}", trace=trace)
        first = asyncio.ensure_future(inventory.call("GET", f"/stock/{sku}", trace=trace))
        done, _ = await asyncio.wait({first}, timeout=after)
        if done:
            return first.result()
        self.hedged.labels(self.name).inc()
        second = asyncio.ensure_future(inventory.call("GET", f"/stock/{sku}", trace=trace))
        done, pending = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        winner = next((c for c in done if c.exception() is None), next(iter(done)))
        if winner.exception() is not None and pending:
            return await pending.pop()  # the faster copy failed; the other may not
        for loser in pending:
            self.losers.add(loser)
            loser.add_done_callback(self.loser_done)
        return winner.result()

    def loser_done(self, loser: asyncio.Future[Any]) -> None:
        self.losers.discard(loser)
        if not loser.cancelled():
            loser.exception()  # read, so a failed copy is not reported as never retrieved

    async def fetch(self, sku: str, trace: tuple[str, str]) -> Any:
        self.backend_fetches.labels(self.name, "hot" if sku == "1" else "other").inc()
        return await self.stock_hedged(sku, trace)

    async def order(self, request: web.Request) -> web.Response:
        self.admit()
        body = await request.json()
        result = await self.dependencies["orders"].call(
            "POST", "/orders", json=body, trace=request["trace"]
        )
        await self.write_seen(str(result.get("sku", "")), result.get("stock"), request["trace"])
        return json_response(result, status=201)

    async def write_seen(self, sku: str, stock: Any, trace: tuple[str, str]) -> None:
        """An order changed a product: remember its new stock, and drop cached copies."""
        if not sku or not isinstance(stock, int):
            return
        self.freshness.write_seen(sku, stock)
        if self.knobs["cache_invalidate_on_write"]:
            self.l1.delete(f"product:{sku}")
            try:
                await self.dependencies["cache"].call(
                    "DELETE", f"/cache/product:{sku}", trace=trace
                )
            except DependencyError as exc:  # the order stands; its product stays stale
                self.logs.log("warning", "cache invalidation failed", sku=sku, error=str(exc))

    async def search(self, request: web.Request) -> web.Response:
        self.admit()
        query = request.query.get("q", "")
        # Sparse fieldsets: only what the results page shows (serialization-overhead).
        fields = "&fields=sku,name" if self.knobs["field_selection"] else ""
        result = await self.dependencies["inventory"].call(
            "GET", f"/search?q={query}{fields}", trace=request["trace"]
        )
        return json_response(result)
