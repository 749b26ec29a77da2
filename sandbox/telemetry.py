"""Telemetry of one sandbox service: RED metrics, mechanism gauges, JSON logs, trace ids."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


PSS_EVERY_S = 5.0


class ServiceMetrics:
    """Every series a service exposes. Names and labels are the sandbox's public contract:
    dashboards, the relay and the step checks read them."""

    def __init__(self, service: str) -> None:
        self.service = service
        r = self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "sdlab_requests",
            "Requests served, by route and status.",
            ["service", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "sdlab_request_duration_seconds",
            "Time to serve a request.",
            ["service", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "sdlab_requests_in_flight", "Requests being served.", ["service"], registry=r
        )
        self.client_calls = Counter(
            "sdlab_client_calls",
            "Calls to a dependency, by outcome (ok, error, timeout, rejected).",
            ["service", "dependency", "outcome"],
            registry=r,
        )
        self.client_attempts = Counter(
            "sdlab_client_attempts",
            "Attempts sent to a dependency, retries included.",
            ["service", "dependency"],
            registry=r,
        )
        self.client_retries = Counter(
            "sdlab_client_retries",
            "Retries sent to a dependency.",
            ["service", "dependency"],
            registry=r,
        )
        self.client_latency = Histogram(
            "sdlab_client_duration_seconds",
            "Time of a call to a dependency, retries included.",
            ["service", "dependency"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_state = Gauge(
            "sdlab_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["service", "dependency"],
            registry=r,
        )
        self.bulkhead_in_use = Gauge(
            "sdlab_bulkhead_in_use",
            "Calls in a bulkhead.",
            ["service", "dependency"],
            registry=r,
        )
        self.pool_in_use = Gauge(
            "sdlab_pool_in_use", "Resources of a pool in use.", ["service", "pool"], registry=r
        )
        self.pool_size = Gauge(
            "sdlab_pool_size", "Resources of a pool.", ["service", "pool"], registry=r
        )
        self.pool_waiting = Gauge(
            "sdlab_pool_waiting", "Callers waiting for a pool.", ["service", "pool"], registry=r
        )
        self.pool_timeouts = Counter(
            "sdlab_pool_timeouts",
            "Callers that gave up waiting for a pool.",
            ["service", "pool"],
            registry=r,
        )
        self.injected = Counter(
            "sdlab_injected_faults",
            "Faults injected into requests, by kind.",
            ["service", "kind"],
            registry=r,
        )
        self.memory = Gauge(
            "sdlab_process_resident_bytes",
            "Resident memory of the service.",
            ["service"],
            registry=r,
        )
        self.memory_pss = Gauge(
            "sdlab_process_proportional_bytes",
            "Memory of the service counting shared pages in proportion (PSS): these add up.",
            ["service"],
            registry=r,
        )
        self.cpu = Counter(
            "sdlab_process_cpu_seconds", "CPU time of the service.", ["service"], registry=r
        )
        self.clock_skew = Gauge(
            "sdlab_clock_skew_seconds", "Offset of the service's clock.", ["service"], registry=r
        )
        self.knobs_fingerprint = Gauge(
            "sdlab_knobs_fingerprint",
            "Checksum of the knobs the service runs with (the supervisor checks it).",
            ["service"],
            registry=r,
        )
        self.extra: dict[str, Any] = {}
        self.cpu_counted = 0.0
        self.pss_read_at = -PSS_EVERY_S

    def gauge(self, name: str, help_text: str, labels: list[str]) -> Gauge:
        if name not in self.extra:
            self.extra[name] = Gauge(name, help_text, labels, registry=self.registry)
            self._expose(self.extra[name], labels)
        return self.extra[name]

    def counter(self, name: str, help_text: str, labels: list[str]) -> Counter:
        if name not in self.extra:
            self.extra[name] = Counter(name, help_text, labels, registry=self.registry)
            self._expose(self.extra[name], labels)
        return self.extra[name]

    def _expose(self, metric: Counter | Gauge, labels: list[str]) -> None:
        """A series labelled by service alone exists from the start, at zero: a rate over
        it is 0, not missing, before the first event (and after a restart)."""
        if labels == ["service"]:
            metric.labels(self.service)

    def refresh_process(self) -> None:
        try:
            with open("/proc/self/statm") as statm:
                resident_pages = int(statm.read().split()[1])
            self.memory.labels(self.service).set(resident_pages * os.sysconf("SC_PAGE_SIZE"))
            # The kernel walks every page table to sum PSS: a sweep in itself, so it is
            # read every few seconds, not on every sample.
            if time.monotonic() - self.pss_read_at >= PSS_EVERY_S:
                self.pss_read_at = time.monotonic()
                with open("/proc/self/smaps_rollup") as rollup:
                    for line in rollup:
                        if line.startswith("Pss:"):
                            self.memory_pss.labels(self.service).set(int(line.split()[1]) * 1024)
                            break
        except OSError:
            pass
        times = os.times()
        spent = times.user + times.system
        self.cpu.labels(self.service).inc(max(0.0, spent - self.cpu_counted))
        self.cpu_counted = max(spent, self.cpu_counted)

    def render(self) -> bytes:
        self.refresh_process()
        return generate_latest(self.registry)


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def traceparent_parse(header: str | None) -> tuple[str, str] | None:
    """W3C traceparent -> (trace id, parent span id), or None if absent or malformed."""
    if not header:
        return None
    parts = header.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    return parts[1], parts[2]


class LogRing:
    """JSON log lines to stdout, and the most recent ones kept for the lab page's log tail."""

    def __init__(self, service: str, size: int = 200, stream: Any = None) -> None:
        self.service = service
        self.lines: deque[dict[str, Any]] = deque(maxlen=size)
        self.stream = stream if stream is not None else sys.stdout
        self.sequence = 0

    def log(self, level: str, message: str, **fields: Any) -> None:
        self.sequence += 1
        line = {
            "time": time.time(),
            "seq": self.sequence,
            "level": level,
            "service": self.service,
            "message": message,
            **fields,
        }
        self.lines.append(line)
        try:
            self.stream.write(json.dumps(line, default=str) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def since(self, sequence: int) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["seq"] > sequence]
