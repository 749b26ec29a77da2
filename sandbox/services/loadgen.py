"""Simulated users: open-loop arrivals (they keep coming whether or not the shop keeps
up), each user's client with a real timeout, retries with backoff, jitter and a budget."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

from sandbox.httpclient import Pool
from sandbox.mechanisms import RetryBudget, backoff_delay
from sandbox.services.base import IDLE_S, Service
from sandbox.telemetry import LATENCY_BUCKETS, Counter, Gauge, Histogram, new_span_id, new_trace_id

POPULAR_PRODUCTS = 1000
HOT_SKU = "1"
SEARCH_WORDS = ("red", "blue", "lamp", "chair", "router", "mug", "desk", "quiet")


def popular_sku() -> str:
    """Log-uniform popularity over 2..1000: a few products get most of the reads, as in
    a real shop, which is what makes a cache worth having."""
    return str(int(2 * (POPULAR_PRODUCTS / 2) ** random.random()))  # noqa: S311


class Loadgen(Service):
    name = "loadgen"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        r = self.metrics.registry
        self.user_requests = Counter(
            "sdlab_user_requests",
            "Simulated users' requests, by kind and outcome.",
            ["service", "kind", "outcome"],
            registry=r,
        )
        self.user_attempts = Counter(
            "sdlab_user_attempts",
            "Requests users sent, retries included.",
            ["service", "kind"],
            registry=r,
        )
        self.user_latency = Histogram(
            "sdlab_user_request_duration_seconds",
            "What a user waited, retries included.",
            ["service", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.user_in_flight = Gauge(
            "sdlab_user_in_flight", "Users waiting for an answer.", ["service"], registry=r
        )
        self.user_shed = Counter(
            "sdlab_user_shed",
            "Arrivals dropped because max_in_flight users were waiting.",
            ["service"],
            registry=r,
        )
        self.pool: Pool | None = None
        self.in_flight: set[asyncio.Task[None]] = set()
        self.budget = RetryBudget(0.0)
        self.budget_ratio = 0.0

    async def on_start(self) -> None:
        self.pool = Pool.for_url(self.topology.dependency_url("loadgen", "gateway"))
        self.background.append(asyncio.create_task(self.arrivals()))

    async def arrivals(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                rate = float(self.knobs["rate_rps"])
                if rate <= 0:
                    await self.knobs_wait(IDLE_S)
                    next_at = loop.time()
                    continue
                next_at = max(next_at + random.expovariate(rate), loop.time() - 1.0)
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                if len(self.in_flight) >= int(self.knobs["max_in_flight"]):
                    self.user_shed.labels(self.name).inc()
                    continue
                task = asyncio.create_task(self.user())
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
                self.user_in_flight.labels(self.name).set(len(self.in_flight))
        finally:
            for task in list(self.in_flight):
                task.cancel()
            if self.pool is not None:
                await self.pool.close()

    def request_for(self) -> tuple[str, str, str, Any]:
        k = self.knobs
        draw = random.random()  # noqa: S311
        if draw < float(k["search_ratio"]):
            word = random.choice(SEARCH_WORDS)  # noqa: S311
            return "search", "GET", f"/search?q={word}", None
        if draw < float(k["search_ratio"]) + float(k["read_ratio"]):
            if random.random() < float(k["hot_key_ratio"]):  # noqa: S311
                return "read", "GET", f"/products/{HOT_SKU}", None
            return "read", "GET", f"/products/{popular_sku()}", None
        # The client's request id stays the same across its retries, as a real client's does.
        sku = HOT_SKU if random.random() < float(k["hot_order_ratio"]) else popular_sku()  # noqa: S311
        return (
            "order",
            "POST",
            "/orders",
            {"sku": sku, "quantity": 1, "request_id": uuid.uuid4().hex},
        )

    async def user(self) -> None:
        if self.pool is None:
            return
        k = self.knobs
        ratio = float(k["user_retry_budget"])
        if ratio != self.budget_ratio:
            self.budget, self.budget_ratio = RetryBudget(ratio), ratio
        self.budget.on_call()
        kind, method, path, body = self.request_for()
        timeout = float(k["user_timeout_ms"]) / 1000
        trace_id = new_trace_id()  # every attempt of one user's request shares its trace
        started = time.perf_counter()
        outcome, attempt = "error", 0
        try:
            while True:
                attempt += 1
                self.user_attempts.labels(self.name, kind).inc()
                try:
                    headers: dict[str, str] = {}
                    with self.tracing.client_span(
                        f"user {kind}", headers, **{"sandbox.attempt": attempt}
                    ) as span:
                        if span is None:
                            headers["traceparent"] = f"00-{trace_id}-{new_span_id()}-01"
                        response = await self.pool.request(
                            method, path, json_body=body, timeout=timeout, headers=headers
                        )
                    if response.status < 500 and response.status != 429:
                        outcome = "ok" if response.status < 400 else "refused"
                        return
                    outcome = "error"
                except TimeoutError:
                    outcome = "timeout"
                except OSError:  # ConnectionFailed among them
                    outcome = "error"
                if attempt > int(k["user_retries"]) or (
                    ratio > 0 and not self.budget.allow_retry()
                ):
                    return
                await asyncio.sleep(
                    backoff_delay(attempt, float(k["user_backoff_ms"]), bool(k["user_jitter"]))
                )
        finally:
            self.user_requests.labels(self.name, kind, outcome).inc()
            self.user_latency.labels(self.name, kind).observe(time.perf_counter() - started)
            self.user_in_flight.labels(self.name).set(max(0, len(self.in_flight) - 1))
