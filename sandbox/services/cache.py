"""A key-value cache service with real TTLs, read by its own (possibly skewed) clock."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web

from sandbox.mechanisms import TTLCache
from sandbox.server import json_response
from sandbox.services.base import IDLE_S, Service, data_dir

LEASE_S = 5.0  # a lease not used by then is given to the next miss


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
        # cache-invalidation-race: leases given on a miss, revoked by a delete
        self.leases: dict[str, tuple[int, float]] = {}  # key -> (lease, when given)
        self.lease_numbers = itertools.count(1)
        self.lease_refusals = m.counter(
            "sdlab_cache_lease_refusals",
            "Fills refused: a delete revoked their lease.",
            ["service"],
        )
        # cache-warming-failure: restarts, empty or from the snapshot
        self.restarts = m.counter(
            "sdlab_cache_restarts",
            "Times the cache came back, by how it started.",
            ["service", "start"],
        )
        # hot-key: lookups per key, a dict per second over the last five
        self.lookups: dict[str, int] = {}
        self.lookups_recent: deque[dict[str, int]] = deque(maxlen=5)
        self.top_key_share = m.gauge(
            "sdlab_cache_top_key_share",
            "Share of the last 5 seconds' lookups that asked for the busiest key.",
            ["service"],
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cache/{key}", self.get),
            web.put("/cache/{key}", self.put),
            web.delete("/cache/{key}", self.delete),
        ]

    async def on_start(self) -> None:
        self.background.append(asyncio.create_task(self.gauges()))
        self.background.append(asyncio.create_task(self.restarts_run()))
        self.background.append(asyncio.create_task(self.snapshots_write()))

    async def gauges(self) -> None:
        while True:
            self.publish()
            await self.figures_due()

    def publish(self) -> None:
        s = self.store
        self.hits.labels(self.name).set(s.hits)
        self.misses.labels(self.name).set(s.misses)
        self.entries.labels(self.name).set(len(s.entries))
        self.expirations.labels(self.name).set(s.expirations)
        self.evictions.labels(self.name).set(s.evictions)
        self.lookups_recent.append(self.lookups)
        self.lookups = {}
        counts: Counter[str] = Counter()
        for second in self.lookups_recent:
            counts.update(second)
        total = sum(counts.values())
        self.top_key_share.labels(self.name).set(max(counts.values()) / total if total else 0)

    async def get(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.lookups[key] = self.lookups.get(key, 0) + 1
        value = self.store.get(key)
        if value is None:
            if request.query.get("lease"):
                return json_response({"hit": False, **self.lease_give(key)})
            return json_response({"hit": False})
        return json_response({"hit": True, "value": value})

    async def put(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "expires_at" in body:
            # An absolute expiry written by the caller's clock, read by ours.
            ttl = float(body["expires_at"]) - self.now()
            if ttl <= 0:
                self.store.expirations += 1
                return json_response({"stored": False, "reason": "already expired"})
        else:
            ttl = float(body.get("ttl_s", 5))
        if not 0 < ttl <= 86_400:
            return json_response({"message": "ttl_s must be between 0 and 86400"}, status=422)
        key = request.match_info["key"]
        if "lease" in body:
            if self.leases.get(key, (None,))[0] != body["lease"]:
                self.lease_refusals.labels(self.name).inc()
                return json_response({"stored": False, "reason": "lease revoked"})
            del self.leases[key]
        self.store.set(key, body.get("value"), ttl)
        return json_response({"stored": True})

    async def delete(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.store.delete(key)
        self.leases.pop(key, None)
        return json_response({"deleted": True})

    def lease_give(self, key: str) -> dict[str, int]:
        """Whoever fills a miss must show its lease; a delete before then revokes it. One
        lease per key at a time: the others read through without filling."""
        now = time.monotonic()
        given = self.leases.get(key)
        if given is not None and now - given[1] < LEASE_S:
            return {}
        self.leases.pop(key, None)
        if len(self.leases) >= self.store.max_entries:
            del self.leases[next(iter(self.leases))]
        lease = next(self.lease_numbers)
        self.leases[key] = (lease, now)
        return {"lease": lease}

    # -- cache-warming-failure: a cache restarted by a deploy, cold or warmed from disk
    def snapshot_path(self) -> str:
        return os.path.join(data_dir(), "cache-snapshot.json")

    async def restarts_run(self) -> None:
        last = time.monotonic()
        while True:
            every = float(self.knobs["cache_flush_every_s"])
            if every <= 0:
                await self.knobs_wait(IDLE_S)
                last = time.monotonic()
                continue
            # Short sleeps: a new period takes effect within a second, not after the old one.
            await asyncio.sleep(max(0.0, min(last + every - time.monotonic(), 1.0)))
            if time.monotonic() - last >= every:
                self.restart()
                last = time.monotonic()

    def restart(self) -> None:
        """What a restart leaves: nothing in memory; with warm start, the last snapshot."""
        self.store.entries.clear()
        self.leases.clear()
        start = "cold"
        if self.knobs["cache_warm_start"] and os.path.exists(self.snapshot_path()):
            with open(self.snapshot_path()) as f:
                saved = json.load(f)
            now = self.now()
            for key, value, expires_at in saved:
                if expires_at > now:
                    self.store.set(key, value, expires_at - now)
            start = "warm"
        self.restarts.labels(self.name, start).inc()
        self.logs.log("info", "cache restarted", start=start, entries=len(self.store.entries))

    async def snapshots_write(self) -> None:
        """With warm start, the entries go to disk every second (as Redis' RDB snapshots)."""
        while True:
            if not self.knobs["cache_warm_start"]:
                await self.knobs_wait(IDLE_S)
                continue
            now = self.now()
            saved = [
                [key, entry.value, entry.expires_at]
                for key, entry in self.store.entries.items()
                if entry.expires_at > now
            ]
            try:  # encoded and written off the loop: reads are not held up by the snapshot
                await asyncio.get_running_loop().run_in_executor(None, self.snapshot_save, saved)
            except OSError as exc:  # a full disk, say: the next second tries again
                self.logs.log("warning", "cache snapshot failed", error=str(exc))
            await asyncio.sleep(1.0)

    def snapshot_save(self, saved: list[list[Any]]) -> None:
        tmp = self.snapshot_path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(saved, f, separators=(",", ":"))
        os.replace(tmp, self.snapshot_path())
