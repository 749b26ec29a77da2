"""The gateway's check that what the cache served is not older than a write it has seen.

Stock only goes down (orders reserve it, nothing restocks), so a product's stock orders
its versions: a read served with more stock than an order already left is a stale read.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.telemetry import Counter

KEPT = 10_000  # products remembered; the oldest is forgotten past this


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    table.pop(key, None)
    table[key] = value
    if len(table) > KEPT:
        del table[next(iter(table))]


class Freshness:
    def __init__(self, stale_reads: Counter, service: str) -> None:
        self.stale_reads = stale_reads
        self.service = service
        for cause in ("filled_after_write", "not_invalidated"):
            stale_reads.labels(service, cause)  # zero from the start, not missing
        self.written: dict[str, tuple[int, float]] = {}  # sku -> (lowest stock, when seen)
        self.filled: dict[str, float] = {}  # sku -> when the gateway last filled the cache

    def write_seen(self, sku: str, stock: int) -> None:
        known = self.written.get(sku)
        if known is None or stock < known[0]:
            _remember(self.written, sku, (stock, time.monotonic()))

    def fill_done(self, sku: str) -> None:
        _remember(self.filled, sku, time.monotonic())

    def read_check(self, sku: str, product: Any) -> None:
        """Counts a stale read, by cause: the entry was there before the write and nobody
        deleted it, or it was filled after the write with a value read before it (a race)."""
        known = self.written.get(sku)
        if known is None or not isinstance(product, dict):
            return
        stock, seen_at = known
        if int(product.get("stock", stock)) <= stock:
            return
        cause = "filled_after_write" if self.filled.get(sku, 0.0) > seen_at else "not_invalidated"
        self.stale_reads.labels(self.service, cause).inc()
