"""Mechanisms inside one service process: a lock that serialises a code path (one for the
whole process, or striped by key) and the cyclic garbage collector's pauses."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from sandbox.telemetry import LATENCY_BUCKETS, Histogram, ServiceMetrics


class LockTable:
    """`stripes` asyncio locks; a key always maps to the same one. One stripe is a global
    lock: every caller queues behind whoever holds it, whatever the key."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.locks: list[asyncio.Lock] = [asyncio.Lock()]
        self.waiting = 0
        self.service = metrics.service
        self.wait_seconds = metrics.counter(
            "sdlab_lock_wait_seconds", "Time callers waited for an in-process lock.", ["service"]
        )
        self.acquired = metrics.counter(
            "sdlab_lock_acquisitions", "Times an in-process lock was taken.", ["service"]
        )
        self.waiters = metrics.gauge(
            "sdlab_lock_waiters", "Callers waiting for an in-process lock now.", ["service"]
        )
        for series in (self.wait_seconds, self.acquired, self.waiters):
            series.labels(self.service)  # exposed from zero

    def section(self, key: str, knobs: dict[str, Any]) -> Any:
        """With `lock_hold_ms`, the price rules of `key` are read under a lock, held across
        their I/O; without, no lock at all."""
        hold_ms = float(knobs["lock_hold_ms"])
        if hold_ms <= 0:
            return contextlib.nullcontext()
        return self.held_across_io(key, int(knobs["lock_stripes"]), hold_ms)

    @contextlib.asynccontextmanager
    async def held_across_io(self, key: str, stripes: int, hold_ms: float) -> AsyncIterator[None]:
        async with self.held(key, stripes):
            await asyncio.sleep(hold_ms / 1000)  # waits on I/O, holding the lock
            yield

    @contextlib.asynccontextmanager
    async def held(self, key: str, stripes: int) -> AsyncIterator[None]:
        if len(self.locks) != stripes:  # resized: callers already queued keep their lock
            self.locks = [asyncio.Lock() for _ in range(max(1, stripes))]
        lock = self.locks[zlib.crc32(key.encode()) % len(self.locks)]
        started = time.perf_counter()
        self.waiting += 1
        self.waiters.labels(self.service).set(self.waiting)
        try:
            await lock.acquire()
        finally:
            self.waiting -= 1
            self.waiters.labels(self.service).set(self.waiting)
        self.wait_seconds.labels(self.service).inc(time.perf_counter() - started)
        self.acquired.labels(self.service).inc()
        try:
            yield
        finally:
            lock.release()


class Node:
    """A small object that points at its parent and its children: a reference cycle, so
    only the cyclic collector (not reference counting) can free it."""

    __slots__ = ("children", "parent")

    def __init__(self, parent: Node | None, back_reference: bool = True) -> None:
        self.parent = parent if back_reference else None
        self.children: list[Node] = []
        if parent is not None:
            parent.children.append(self)


def tree_build(objects: int, back_references: bool = True) -> Node:
    """About `objects` tracked objects (each node and its child list count)."""
    root = Node(None)
    parent = root
    for i in range(max(1, objects // 2)):
        child = Node(parent, back_references)
        if i % 8 == 7:
            parent = child
    return root


class GcPressure:
    """A long-lived heap every full collection must walk, per-request cyclic garbage that
    lives long enough to be promoted, and the collector's pauses measured by gc.callbacks."""

    RECENT = 8  # requests whose trees are still referenced (a per-request context cache)

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.heap: list[Node] = []
        self.recent: collections.deque[Node] = collections.deque(maxlen=self.RECENT)
        self.frozen = False
        self.service = metrics.service
        self.pause = Histogram(
            "sdlab_gc_pause_seconds",
            "Stop-the-world pauses of the cyclic garbage collector, by generation.",
            ["service", "generation"],
            buckets=LATENCY_BUCKETS,
            registry=metrics.registry,
        )
        self.heap_objects = metrics.gauge(
            "sdlab_gc_tracked_objects", "Objects the garbage collector tracks.", ["service"]
        )
        # Made now, not from inside a collection: a collection can start while a series is
        # being made, and making another there would wait on that one's lock.
        for generation in ("0", "1", "2"):
            self.pause.labels(self.service, generation)
        self.started_at = 0.0
        gc.callbacks.append(self.on_gc)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started_at = time.perf_counter()
            return
        seconds = time.perf_counter() - self.started_at
        generation = str(info.get("generation", 0))
        self.pause.labels(self.service, generation).observe(seconds)

    def configure(self, heap_objects: int, freeze: bool) -> None:
        """Builds or drops the long-lived heap; gc.freeze() moves it out of the collector's
        sight (the permanent generation), gc.unfreeze() back."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        wanted = max(0, heap_objects) // 1000
        if len(self.heap) != wanted:
            self.heap = [tree_build(1000) for _ in range(wanted)]
        if not wanted:
            self.recent.clear()
        if freeze and wanted:
            gc.collect()
            gc.freeze()
            self.frozen = True
        self.heap_objects.labels(self.service).set(len(gc.get_objects()))

    def churn(self, objects: int, acyclic: bool) -> None:
        """One request's objects, kept for the next few requests: garbage the cyclic
        collector must find, or (acyclic) that reference counting frees on its own."""
        if objects > 0:
            self.recent.append(tree_build(objects, back_references=not acyclic))
