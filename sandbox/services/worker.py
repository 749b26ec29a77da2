"""The fulfilment worker: takes orders off the queue and ships them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sandbox.services.base import DependencyError, Service


class Worker(Service):
    name = "worker"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        m = self.metrics
        self.processed = m.counter("sdlab_worker_processed", "Orders fulfilled.", ["service"])
        self.failed = m.counter(
            "sdlab_worker_failed", "Orders whose fulfilment failed.", ["service"]
        )
        self.consumers_gauge = m.gauge(
            "sdlab_worker_consumers", "Orders the worker fulfils at once.", ["service"]
        )
        self.consumers: list[asyncio.Task[None]] = []

    async def on_start(self) -> None:
        self.consumers_set()

    async def on_knobs(self, changed: dict[str, Any]) -> None:
        if "worker_concurrency" in changed:
            self.consumers_set()

    def consumers_set(self) -> None:
        """As many consume loops as `worker_concurrency` says; extra ones are cancelled."""
        wanted = max(1, int(self.knobs["worker_concurrency"]))
        while len(self.consumers) < wanted:
            task = asyncio.create_task(self.consume())
            self.consumers.append(task)
            self.background.append(task)
        while len(self.consumers) > wanted:
            self.consumers.pop().cancel()
        self.consumers_gauge.labels(self.name).set(len(self.consumers))

    async def consume(self) -> None:
        queue, inventory = self.dependencies["queue"], self.dependencies["inventory"]
        while True:
            try:
                if self.knobs["worker_wait_notify"]:
                    polled = await self.claim_or_sleep()
                else:
                    # A long poll: an idle worker asks a few times a minute, not twice a second.
                    polled = await queue.call("GET", "/dequeue?wait_ms=3000", timeout_s=4.0)
            except DependencyError:
                await asyncio.sleep(0.2)
                continue
            message = polled.get("message") if polled else None
            if not message:
                continue
            await asyncio.sleep(float(self.knobs["worker_processing_ms"]) / 1000)
            try:
                await inventory.call(
                    "POST", "/ship", json={"sku": message["sku"], "quantity": message["quantity"]}
                )
                self.processed.labels(self.name).inc()
            except DependencyError as exc:
                self.failed.labels(self.name).inc()
                with contextlib.suppress(Exception):
                    self.logs.log("warning", "fulfilment failed", error=str(exc))

    async def claim_or_sleep(self) -> Any:
        """Claims a message without waiting; with none, sleeps until the queue wakes it
        (thundering-herd) and reports no message, so the loop claims again."""
        queue = self.dependencies["queue"]
        polled = await queue.call("GET", "/dequeue?wait_ms=0")
        if polled and polled.get("message"):
            return polled
        await queue.call("GET", "/wait?wait_ms=20000", timeout_s=21.0)
        return None
