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

    async def on_start(self) -> None:
        self.background.append(asyncio.create_task(self.consume()))

    async def consume(self) -> None:
        queue, inventory = self.dependencies["queue"], self.dependencies["inventory"]
        while True:
            try:
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
