"""A key-value cache service with real TTLs, read by its own (possibly skewed) clock."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sandbox.mechanisms import TTLCache
from sandbox.services.base import GAUGE_PERIOD_S, Service


class Cache(Service):
    name = "cache"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store: TTLCache[Any] = TTLCache(max_entries=20_000, clock=self.now)
        m = self.metrics
        self.hits = m.gauge(
            "sdlab_cache_hits", "Cache lookups that found a live entry (total).", ["service"]
        )
        self.misses = m.gauge(
            "sdlab_cache_misses", "Cache lookups that found nothing live (total).", ["service"]
        )
        self.entries = m.gauge("sdlab_cache_entries", "Entries held.", ["service"])
        self.expirations = m.gauge(
            "sdlab_cache_expirations", "Entries found expired (total).", ["service"]
        )
        self.evictions = m.gauge(
            "sdlab_cache_evictions", "Entries evicted to make room (total).", ["service"]
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cache/{key}", self.get),
            web.put("/cache/{key}", self.put),
            web.delete("/cache/{key}", self.delete),
        ]

    async def on_start(self) -> None:
        self.background.append(asyncio.create_task(self.gauges()))

    async def gauges(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(GAUGE_PERIOD_S)

    def publish(self) -> None:
        s = self.store
        self.hits.labels(self.name).set(s.hits)
        self.misses.labels(self.name).set(s.misses)
        self.entries.labels(self.name).set(len(s.entries))
        self.expirations.labels(self.name).set(s.expirations)
        self.evictions.labels(self.name).set(s.evictions)

    async def get(self, request: web.Request) -> web.Response:
        value = self.store.get(request.match_info["key"])
        if value is None:
            return web.json_response({"hit": False})
        return web.json_response({"hit": True, "value": value})

    async def put(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "expires_at" in body:
            # An absolute expiry written by the caller's clock, read by ours.
            ttl = float(body["expires_at"]) - self.now()
            if ttl <= 0:
                self.store.expirations += 1
                return web.json_response({"stored": False, "reason": "already expired"})
        else:
            ttl = float(body.get("ttl_s", 5))
        if not 0 < ttl <= 86_400:
            return web.json_response({"message": "ttl_s must be between 0 and 86400"}, status=422)
        self.store.set(request.match_info["key"], body.get("value"), ttl)
        return web.json_response({"stored": True})

    async def delete(self, request: web.Request) -> web.Response:
        self.store.delete(request.match_info["key"])
        return web.json_response({"deleted": True})
