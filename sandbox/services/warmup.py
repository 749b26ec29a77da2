"""Inventory's price list: built in memory from the products table once per process, so a
process starts cold. Built lazily, every request that finds it missing builds its own (the
classic lazy-initialisation race); behind a readiness gate, one build runs at start and
requests wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.services.base import burn_cpu
from sandbox.telemetry import ServiceMetrics

# Knobs a process must know as it starts (before the supervisor's first push): its config file.
STARTUP_KNOBS = ("price_table_lazy", "price_table_build_ms", "warm_before_ready")


class PriceTable:
    def __init__(
        self,
        service: str,
        metrics: ServiceMetrics,
        connect: Callable[[], sqlite3.Connection],
        config: Path,
    ) -> None:
        self.service = service
        self.connect = connect
        self.config = config
        self.prices: dict[str, int] | None = None
        self.warming: asyncio.Future[None] | None = None
        self.in_flight = 0
        self.builds = metrics.counter(
            "sdlab_price_table_builds", "Price-list builds started.", ["service"]
        )
        self.building = metrics.gauge(
            "sdlab_price_table_builds_in_flight", "Price-list builds running now.", ["service"]
        )
        self.warm = metrics.gauge("sdlab_warm", "1 once the process is warm.", ["service"])
        self.warm.labels(service).set(0)

    def startup_knobs(self) -> dict[str, Any]:
        """The cold-start knobs the previous process ran with (none on a first start)."""
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(self.config.read_text())
            return {k: loaded[k] for k in STARTUP_KNOBS if k in loaded}
        return {}

    def startup_knobs_save(self, knobs: dict[str, Any]) -> None:
        self.config.write_text(json.dumps({k: knobs[k] for k in STARTUP_KNOBS}))

    def build(self, work_ms: float) -> None:
        """Runs on a thread: reads every price and compiles the pricing rules (real CPU)."""
        if self.prices is not None:  # built by another request while this one queued
            return
        self.in_flight += 1
        self.building.labels(self.service).set(self.in_flight)
        try:
            db = self.connect()
            try:
                rows = db.execute("SELECT sku, price_cents FROM products").fetchall()
            finally:
                db.close()
            burn_cpu(work_ms / 1000, time.thread_time)  # two builds at once cost twice
            self.prices = dict(rows)
            self.warm.labels(self.service).set(1)
        finally:
            self.in_flight -= 1
            self.building.labels(self.service).set(self.in_flight)

    def start(self, knobs: dict[str, Any]) -> None:
        """Behind the readiness gate the one build starts now, before any request needs it."""
        if knobs["price_table_lazy"] and knobs["warm_before_ready"] and self.warming is None:
            self.warming = self._build(knobs)

    def _build(self, knobs: dict[str, Any]) -> asyncio.Future[None]:
        self.builds.labels(self.service).inc()
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, self.build, float(knobs["price_table_build_ms"]))

    async def price(self, knobs: dict[str, Any], sku: str, default: int) -> int:
        if not knobs["price_table_lazy"]:
            return default
        if self.prices is None:
            if knobs["warm_before_ready"]:
                if self.warming is None or self.warming.done():
                    self.warming = self._build(knobs)
                await asyncio.shield(self.warming)  # wait for the one build
            else:
                await self._build(knobs)  # nobody coordinates: each request builds its own
        return self.prices.get(sku, default) if self.prices is not None else default
