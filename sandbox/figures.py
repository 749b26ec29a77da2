"""Key figures of a sandbox, computed from two samples of its services' metrics: rates,
error ratios and latency percentiles over the window between them, and current gauges.

A figure is named `<service>.<what>` (`inventory.p99_ms`, `users.success_ratio`); the
lab page, the step checks and the scenario signatures all read these names.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
SampleKey = tuple[str, Labels]
Entries = list[tuple[dict[str, str], int]]


class Layout:
    """Which series a snapshot holds, in order, and an index of them by metric and by
    (metric, service). A sandbox adds series rarely once warm, so every snapshot taken
    in between shares one layout, and a second's sample is a list of values."""

    def __init__(self, keys: Sequence[SampleKey], parts: tuple[object, ...] = ()) -> None:
        self.keys = tuple(keys)
        self.parts = parts  # what it was made from: a sampler reuses it while they stay
        self.position = {key: at for at, key in enumerate(self.keys)}
        self.by_name: dict[str, Entries] = defaultdict(list)
        self.by_service: dict[tuple[str, str], Entries] = defaultdict(list)
        for at, (name, labels) in enumerate(self.keys):
            if self.position[(name, labels)] != at:
                continue  # a key given twice: the later value stands, as in a dict
            as_dict = dict(labels)
            self.by_name[name].append((as_dict, at))
            service = as_dict.get("service")
            if service is not None:
                self.by_service[(name, service)].append((as_dict, at))


@dataclass(frozen=True, eq=False)  # one snapshot is one moment: compared by identity
class Snapshot:
    at: float
    layout: Layout
    values: Sequence[float]

    def value(self, key: SampleKey, default: float = 0.0) -> float:
        at = self.layout.position.get(key)
        return default if at is None else self.values[at]

    def items(self) -> Iterator[tuple[SampleKey, float]]:
        return zip(self.layout.keys, self.values, strict=True)


def snapshot_from(samples: Iterable[tuple[str, Mapping[str, str], float]], at: float) -> Snapshot:
    """A snapshot of its own layout (later duplicates of a key win, as in a dict)."""
    values: dict[SampleKey, float] = {
        (name, tuple(sorted(labels.items()))): value for name, labels, value in samples
    }
    return Snapshot(at, Layout(list(values)), list(values.values()))


def _entries(snapshot: Snapshot, name: str, match: dict[str, str]) -> Entries:
    """The series of `name`, narrowed by the index when `match` names a service (which
    it then no longer needs to check)."""
    service = match.pop("service", None)
    if service is None:
        return snapshot.layout.by_name.get(name, [])
    return snapshot.layout.by_service.get((name, service), [])


def _sum(snapshot: Snapshot, name: str, **match: str) -> float:
    total = 0.0
    values = snapshot.values
    for labels, at in _entries(snapshot, name, match):
        if not match or _matches(labels, match):
            total += values[at]
    return total


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def _buckets(snapshot: Snapshot, name: str, **match: str) -> dict[float, float]:
    buckets: dict[float, float] = defaultdict(float)
    values = snapshot.values
    for labels, at in _entries(snapshot, f"{name}_bucket", match):
        if not match or _matches(labels, match):
            buckets[float(labels["le"])] += values[at]
    return buckets


def quantile(q: float, before: Mapping[float, float], after: Mapping[float, float]) -> float:
    """histogram_quantile over the window: linear interpolation inside the bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return math.nan
    rank = q * counts[-1]
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            width = count - previous_count
            fraction = (rank - previous_count) / width if width > 0 else 1.0
            return previous_bound + (bound - previous_bound) * fraction
        previous_bound, previous_count = bound, count
    return previous_bound


def _service_figures(
    figures: dict[str, float], moved: Snapshot, new: Snapshot, dt: float, service: str
) -> None:
    """`moved`: how far each series moved in the window; `new`: where gauges stand now."""
    total = _sum(moved, "sdlab_requests_total", service=service)
    errors = 0.0
    for labels, at in moved.layout.by_service.get(("sdlab_requests_total", service), ()):
        if labels.get("status", "0")[:1] == "5":
            errors += moved.values[at]
    figures[f"{service}.rps"] = total / dt
    figures[f"{service}.error_ratio"] = errors / total if total > 0 else 0.0
    figures[f"{service}.errors_rps"] = errors / dt
    latency = _buckets(moved, "sdlab_request_duration_seconds", service=service)
    for q in (50, 95, 99):
        figures[f"{service}.p{q}_ms"] = quantile(q / 100, {}, latency) * 1000
    cpu = _sum(moved, "sdlab_process_cpu_seconds_total", service=service)
    figures[f"{service}.cpu_ratio"] = cpu / dt
    # The cost of a request, whatever the traffic: unlike the ratio, it does not fall when
    # a busy host serves the service fewer requests.
    figures[f"{service}.cpu_ms_per_request"] = cpu * 1000 / total if total > 0 else 0.0
    figures[f"{service}.memory_mb"] = (
        _sum(new, "sdlab_process_resident_bytes", service=service) / 2**20
    )
    figures[f"{service}.pss_mb"] = (
        _sum(new, "sdlab_process_proportional_bytes", service=service) / 2**20
    )
    figures[f"{service}.in_flight"] = _sum(new, "sdlab_requests_in_flight", service=service)
    figures[f"{service}.client_attempts_rps"] = (
        _sum(moved, "sdlab_client_attempts_total", service=service) / dt
    )
    figures[f"{service}.client_retries_rps"] = (
        _sum(moved, "sdlab_client_retries_total", service=service) / dt
    )
    figures[f"{service}.client_rejected_rps"] = (
        _sum(moved, "sdlab_client_calls_total", service=service, outcome="rejected") / dt
    )
    states = [
        new.values[at] for _, at in new.layout.by_service.get(("sdlab_breaker_state", service), ())
    ]
    figures[f"{service}.breaker_open"] = 1.0 if any(s == 2 for s in states) else 0.0
    figures[f"{service}.clock_skew_s"] = _sum(new, "sdlab_clock_skew_seconds", service=service)


def moved_between(old: Snapshot, new: Snapshot) -> Snapshot:
    """How far every series moved from `old` to `new`. A series that went down was reset
    (its service restarted): it moved by its new value, as Prometheus' rate() reads it."""
    if old.layout is new.layout:
        before: Sequence[float] = old.values
    else:
        values, position = old.values, old.layout.position
        before = [
            values[at] if (at := position.get(key)) is not None else 0.0 for key in new.layout.keys
        ]
    moved = [n - b if n >= b else n for b, n in zip(before, new.values, strict=True)]
    return Snapshot(new.at, new.layout, moved)


def figures_compute(old: Snapshot, new: Snapshot, services: Iterable[str]) -> dict[str, float]:
    dt = max(1e-3, new.at - old.at)
    figures: dict[str, float] = {"window_s": dt}
    moved = moved_between(old, new)
    for service in services:
        _service_figures(figures, moved, new, dt, service)

    def delta(name: str, **match: str) -> float:
        return _sum(moved, name, **match)

    users = delta("sdlab_user_requests_total")
    ok = delta("sdlab_user_requests_total", outcome="ok")
    figures["users.rps"] = users / dt
    figures["users.success_ratio"] = ok / users if users > 0 else math.nan
    figures["users.error_ratio"] = 1 - ok / users if users > 0 else math.nan
    figures["users.attempts_rps"] = delta("sdlab_user_attempts_total") / dt
    figures["users.shed_rps"] = delta("sdlab_user_shed_total") / dt
    waited = _buckets(moved, "sdlab_user_request_duration_seconds")
    for q in (50, 95, 99):
        figures[f"users.p{q}_ms"] = quantile(q / 100, {}, waited) * 1000
    hits, misses = delta("sdlab_cache_hits"), delta("sdlab_cache_misses")
    figures["cache.hit_ratio"] = hits / (hits + misses) if hits + misses > 0 else math.nan
    figures["cache.entries"] = _sum(new, "sdlab_cache_entries")
    figures["cache.expirations_rps"] = delta("sdlab_cache_expirations") / dt
    figures["gateway.backend_fetches_rps"] = delta("sdlab_gateway_backend_fetches_total") / dt
    figures["gateway.hot_key_fetches_rps"] = (
        delta("sdlab_gateway_backend_fetches_total", sku_class="hot") / dt
    )
    figures["gateway.rate_limited_rps"] = delta("sdlab_rate_limited_total") / dt
    figures["inventory.pool_in_use"] = _sum(new, "sdlab_pool_in_use", pool="db")
    figures["inventory.pool_size"] = _sum(new, "sdlab_pool_size", pool="db")
    figures["inventory.pool_waiting"] = _sum(new, "sdlab_pool_waiting", pool="db")
    figures["inventory.pool_timeouts_rps"] = delta("sdlab_pool_timeouts_total", pool="db") / dt
    figures["inventory.threadpool_queued"] = _sum(new, "sdlab_threadpool_queued")
    figures["inventory.index_present"] = _sum(new, "sdlab_db_index_present")
    queries, seconds = delta("sdlab_db_queries_total"), delta("sdlab_db_query_seconds_total")
    figures["inventory.query_ms"] = seconds / queries * 1000 if queries > 0 else math.nan
    comparisons, searches = (
        delta("sdlab_search_comparisons_total"),
        delta("sdlab_db_queries_total", query="search"),
    )
    figures["inventory.search_comparisons_per_query"] = (
        comparisons / searches if searches > 0 else math.nan
    )
    figures["queue.depth"] = _sum(new, "sdlab_queue_depth")
    figures["queue.oldest_age_s"] = _sum(new, "sdlab_queue_oldest_age_seconds")
    figures["worker.processed_rps"] = delta("sdlab_worker_processed_total") / dt
    figures["worker.failed_rps"] = delta("sdlab_worker_failed_total") / dt
    # infra helpers' scenarios: fd exhaustion, bulkhead saturation, crash loop, dns failure
    for service in services:
        figures[f"{service}.open_fds"] = _sum(new, "sdlab_open_fds", service=service)
        restarts = "sdlab_service_restarts_total"
        figures[f"{service}.restarts"] = _sum(new, restarts, service=service)
        figures[f"{service}.restarts_per_min"] = _sum(moved, restarts, service=service) * 60 / dt
        lookups = "sdlab_dns_lookups_total"
        figures[f"{service}.dns_failures_rps"] = (
            _sum(moved, lookups, service=service, outcome="failed") / dt
        )
    reads = delta("sdlab_user_requests_total", kind="read")
    reads_ok = delta("sdlab_user_requests_total", kind="read", outcome="ok")
    figures["users.read_success_ratio"] = reads_ok / reads if reads > 0 else math.nan
    figures["gateway.workers_busy"] = _sum(new, "sdlab_pool_in_use", pool="workers")
    figures["gateway.workers_waiting"] = _sum(new, "sdlab_pool_waiting", pool="workers")
    # Shared pages counted once (PSS); the supervisor and the proxy are not in `services`.
    figures["sandbox.memory_mb"] = sum(figures.get(f"{s}.pss_mb", 0.0) for s in services)
    # stale-read, cache-invalidation-race, cache-warming-failure, hot-key
    stale = delta("sdlab_gateway_stale_reads_total")
    reads = delta("sdlab_requests_total", service="gateway", route="/products/{sku}")
    figures["gateway.stale_reads_rps"] = stale / dt
    figures["gateway.stale_read_ratio"] = stale / reads if reads > 0 else math.nan
    figures["gateway.race_stale_reads_rps"] = (
        delta("sdlab_gateway_stale_reads_total", cause="filled_after_write") / dt
    )
    figures["cache.lease_refusals_rps"] = delta("sdlab_cache_lease_refusals_total") / dt
    figures["cache.flushes"] = delta("sdlab_cache_restarts_total")  # emptied, not restarted
    figures["cache.top_key_share"] = _sum(new, "sdlab_cache_top_key_share")
    l1_hits, l1_reads = (
        delta("sdlab_gateway_l1_reads_total", outcome="hit"),
        delta("sdlab_gateway_l1_reads_total"),
    )
    figures["gateway.l1_hit_ratio"] = l1_hits / l1_reads if l1_reads > 0 else 0.0
    # concurrency: double-write, lost-update, optimistic-locking-collision, phantom-read,
    # thundering-herd
    figures["inventory.duplicate_orders_rps"] = delta("sdlab_duplicate_orders_total") / dt
    figures["inventory.idempotent_replays_rps"] = (
        delta("sdlab_reservations_total", outcome="replayed") / dt
    )
    figures["inventory.lost_updates_rps"] = delta("sdlab_stock_lost_updates_total") / dt
    conflicts, reservations = (
        delta("sdlab_version_conflicts_total"),
        delta("sdlab_reservations_total"),
    )
    figures["inventory.version_conflicts_rps"] = conflicts / dt
    figures["inventory.conflicts_per_reservation"] = (
        conflicts / reservations if reservations > 0 else math.nan
    )
    reports = delta("sdlab_reports_total")
    figures["inventory.inconsistent_reports_ratio"] = (
        delta("sdlab_reports_total", outcome="inconsistent") / reports if reports > 0 else math.nan
    )
    wakeups, claimed = delta("sdlab_queue_wakeups_total"), delta("sdlab_queue_dequeued_total")
    figures["queue.wakeups_per_message"] = wakeups / claimed if claimed > 0 else math.nan
    figures["queue.empty_claims_rps"] = delta("sdlab_queue_empty_claims_total") / dt
    _dbperf_figures(figures, delta, new, dt, searches)
    return figures


# dbperf: n-plus-one, deadlock, row-lock-contention, serialization, lock-contention, gc-pause
def _dbperf_figures(
    figures: dict[str, float],
    delta: Callable[..., float],
    new: Snapshot,
    dt: float,
    searches: float,
) -> None:
    def per(total: float, count: float, scale: float = 1.0) -> float:
        return total / count * scale if count > 0 else 0.0

    listing = delta("sdlab_db_queries_total", query="listing")
    figures["inventory.queries_per_search"] = per(searches + listing, searches) or math.nan
    figures["inventory.db_queries_rps"] = delta("sdlab_db_queries_total") / dt
    figures["inventory.db_lock_wait_ms"] = per(
        delta("sdlab_db_lock_wait_seconds_total"), delta("sdlab_db_lock_waits_total"), 1000
    )
    figures["inventory.deadlocks_rps"] = delta("sdlab_db_deadlocks_total") / dt
    figures["inventory.transaction_retries_rps"] = delta("sdlab_db_transaction_retries_total") / dt
    figures["inventory.reserved_rps"] = (
        delta("sdlab_requests_total", service="inventory", route="/reserve", status="200") / dt
    )
    figures["inventory.search_response_kb"] = per(
        delta("sdlab_response_bytes_total", route="/search"),
        delta("sdlab_requests_total", service="inventory", route="/search"),
        1 / 1024,
    )
    figures["inventory.lock_wait_ms"] = per(
        delta("sdlab_lock_wait_seconds_total"), delta("sdlab_lock_acquisitions_total"), 1000
    )
    figures["inventory.lock_waiters"] = _sum(new, "sdlab_lock_waiters")
    figures["inventory.gc_pause_ms_per_s"] = delta("sdlab_gc_pause_seconds_sum") / dt * 1000
    figures["inventory.gc_full_pause_ms"] = per(
        delta("sdlab_gc_pause_seconds_sum", generation="2"),
        delta("sdlab_gc_pause_seconds_count", generation="2"),
        1000,
    )


def declared_values(
    old: Snapshot, new: Snapshot, specs: Iterable[tuple[str, str, str]]
) -> list[dict[str, object]]:
    """The current reading of a scenario's declared metrics, summed over their series:
    (name, type, help) in; a gauge's value, or a counter's or histogram's rate per second."""
    dt = max(1e-3, new.at - old.at)
    moved = moved_between(old, new)
    readings: list[dict[str, object]] = []
    for name, kind, help_text in specs:
        if kind == "gauge":
            value, unit = _sum(new, name), ""
        else:
            sample = name if kind == "counter" else f"{name}_count"
            value, unit = _sum(moved, sample) / dt, "/s"
        readings.append(
            {"name": name, "type": kind, "help": help_text, "value": round(value, 4), "unit": unit}
        )
    return readings
