"""Telemetry of one sandbox service: RED metrics, mechanism gauges, JSON logs, trace ids."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar, cast

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest

if TYPE_CHECKING:
    from sandbox.boards import LogBoard


_M = TypeVar("_M", bound="_RememberedLabels")


class _RememberedLabels:
    """prometheus_client's `labels()` converts, checks and takes a lock on every call; a
    service asks for the same few series on every request (a few per request, in every
    process), so each child is remembered by the label values it was asked for."""

    _remembered: dict[tuple[Any, ...], Any]

    def labels(self: _M, *values: Any, **by_name: Any) -> _M:
        if by_name:
            return cast("_M", super().labels(*values, **by_name))  # type: ignore[misc]
        try:
            return self._remembered[values]
        except AttributeError:
            self._remembered = {}
        except KeyError:
            pass
        child = super().labels(*values)  # type: ignore[misc]
        self._remembered[values] = child
        return cast("_M", child)

    def remove(self, *values: Any) -> None:
        """A series removed is forgotten here too: asked for again, it is a new one."""
        self._remembered = {}
        super().remove(*values)  # type: ignore[misc]

    def clear(self) -> None:
        self._remembered = {}
        super().clear()  # type: ignore[misc]


class Counter(_RememberedLabels, prometheus_client.Counter):
    pass


class Gauge(_RememberedLabels, prometheus_client.Gauge):
    pass


class Histogram(_RememberedLabels, prometheus_client.Histogram):
    pass


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# PSS makes the kernel walk a process's page tables: a fifth of an idle supervisor's CPU
# when read every 5 s for eight processes. Shared pages move slowly; RSS is read each time.
PSS_EVERY_S = 15.0
LOG_LINE_KEPT_BYTES = 1536  # fits a log board's slot


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
            if time.monotonic() - self.pss_read_at >= PSS_EVERY_S:
                self.pss_read_at = time.monotonic()
                self.memory_pss.labels(self.service).set(proportional_bytes("self"))
        except OSError:
            pass
        times = os.times()
        spent = times.user + times.system
        self.cpu.labels(self.service).inc(max(0.0, spent - self.cpu_counted))
        self.cpu_counted = max(spent, self.cpu_counted)

    def render(self) -> bytes:
        self.refresh_process()
        return generate_latest(self.registry)


PROCESS_FIGURES = (
    "sdlab_process_resident_bytes",
    "sdlab_process_proportional_bytes",
    "sdlab_process_cpu_seconds_total",
)


class ProcessFigures:
    """Each service's memory and CPU, read by its supervisor from /proc: the same series
    `refresh_process` sets inside a service, without waking it."""

    def __init__(self) -> None:
        self.pss: dict[int, float] = {}
        self.pss_read_at = -PSS_EVERY_S
        self.tick = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")

    def read(self, pids: dict[str, int]) -> dict[str, list[float]]:
        """Each service's `PROCESS_FIGURES`, in that order; a service whose process
        could not be read (gone between its fork and now) is left out."""
        pss_due = time.monotonic() - self.pss_read_at >= PSS_EVERY_S
        if pss_due:
            self.pss_read_at = time.monotonic()
        out: dict[str, list[float]] = {}
        for service, pid in pids.items():
            try:
                with open(f"/proc/{pid}/statm") as statm:
                    resident = int(statm.read().split()[1]) * self.page
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / self.tick
                if pss_due or pid not in self.pss:
                    self.pss[pid] = proportional_bytes(pid)
            except (OSError, ValueError, IndexError):
                continue  # gone between the fork and this read: the next sample has it
            out[service] = [float(resident), self.pss[pid], cpu]
        for gone in set(self.pss) - set(pids.values()):
            del self.pss[gone]
        return out


def proportional_bytes(pid: int | str) -> float:
    """PSS: the kernel walks every page table to sum it, so callers read it seldom."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return float(int(line.split()[1]) * 1024)
    return 0.0


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
    """JSON log lines to stdout, and the most recent ones kept for the lab page's log tail:
    on the service's log board when it runs under a supervisor, else here."""

    board: LogBoard | None = None  # set in a service by `sandbox.boards.install`

    def __init__(self, service: str, size: int = 200, stream: Any = None) -> None:
        self.service = service
        self.lines: deque[dict[str, Any]] = deque(maxlen=0 if self.board else size)
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
        text = json.dumps(line, default=str)
        if self.board is not None:
            kept = text.encode()
            if len(kept) > LOG_LINE_KEPT_BYTES:  # the tail keeps what it can; stdout has it all
                core = {k: line[k] for k in ("time", "seq", "level", "service")}
                cut = {"message": message[:500], "cut": "too long for the log tail"}
                kept = json.dumps({**core, **cut}, default=str).encode()
            self.board.write(self.sequence, kept, line["time"])
        else:
            self.lines.append(line)
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def since(self, sequence: float) -> list[dict[str, Any]]:
        if self.board is not None:
            return self.board.since(sequence)
        return [line for line in self.lines if line["seq"] > sequence]
