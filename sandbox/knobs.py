"""Knobs: the settings of the sandbox's real mechanisms that scenarios and mitigations turn.

A scenario never fakes a number: it turns knobs (a delay in a handler, a smaller pool, a
dropped index, a toxic on a hop) and the mechanisms produce the effect. Several owners
(scenarios, mitigations) may turn the same knob; each knob says how their values combine,
so two scenarios at once behave as both.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

# target -> {knob: value}; a target is a service name or "hop:<from>-><to>".
KnobSettings = dict[str, dict[str, Any]]

Combine = Literal["sum", "max", "min", "any", "last"]


@dataclass(frozen=True)
class Knob:
    default: Any
    combine: Combine
    help: str


SERVICE_KNOBS: dict[str, Knob] = {
    # injected into the service's own request handling
    "delay_ms": Knob(0.0, "sum", "fixed delay added to every request"),
    "delay_jitter_ms": Knob(0.0, "sum", "uniform random delay added on top, 0..jitter"),
    "slow_ratio": Knob(0.0, "max", "share of requests that take slow_ms longer (a long tail)"),
    "slow_ms": Knob(0.0, "max", "extra delay of the slow share"),
    "error_ratio": Knob(0.0, "max", "share of requests answered with error_status"),
    "error_status": Knob(503, "last", "status of injected errors"),
    "error_burst_on_s": Knob(0.0, "max", "length of each burst in which every request fails"),
    "error_burst_off_s": Knob(0.0, "max", "quiet time between bursts"),
    "cpu_burn_ms": Knob(0.0, "sum", "CPU work done in the handler per request"),
    "background_cpu_ratio": Knob(0.0, "max", "share of a core burnt by a background loop"),
    "background_cpu_cap": Knob(1.0, "min", "the most of a core background work may take"),
    "leak_kb_per_request": Knob(0.0, "sum", "memory retained per request, never freed"),
    "disk_fill_mb_per_s": Knob(0.0, "sum", "data written to the service's disk every second"),
    "disk_cleanup": Knob(False, "any", "rotate: delete what the filler wrote and stop filling"),
    "clock_skew_s": Knob(0.0, "sum", "offset of this service's clock"),
    "max_requests": Knob(0, "min", "requests after which the service restarts itself (0 = never)"),
    "nice": Knob(0, "max", "scheduling niceness of the service's process (0..19)"),
    # the service's clients of its dependencies
    "client_timeout_ms": Knob(1000.0, "min", "timeout of each call to a dependency"),
    "client_retries": Knob(2, "last", "retries after a failed call"),
    "client_backoff_ms": Knob(20.0, "last", "base of the exponential backoff between retries"),
    "client_jitter": Knob(False, "any", "randomise backoff (full jitter)"),
    "client_retry_budget": Knob(0.0, "last", "retries allowed as a share of calls (0 = no budget)"),
    "client_breaker": Knob(False, "any", "circuit breaker in front of each dependency"),
    "client_breaker_threshold": Knob(0.5, "last", "failure ratio that opens the breaker"),
    "client_breaker_cooldown_ms": Knob(2000.0, "last", "how long the breaker stays open"),
    "client_bulkhead": Knob(0, "last", "max concurrent calls per dependency (0 = unlimited)"),
    "client_pool_size": Knob(32, "min", "connections per dependency"),
    # service specific (ignored where they mean nothing)
    "rate_limit_rps": Knob(0.0, "last", "gateway: requests per second admitted (0 = off)"),
    "cache_enabled": Knob(True, "last", "gateway: read products through the cache"),
    "cache_ttl_s": Knob(5.0, "last", "gateway: TTL of cached products"),
    "cache_ttl_jitter": Knob(False, "any", "gateway: spread TTLs by +/-20% so keys expire apart"),
    "cache_relative_ttl": Knob(False, "any", "gateway: send TTLs as durations, not absolute times"),
    "coalescing": Knob(False, "any", "gateway: one backend fetch per key at a time"),
    "db_index": Knob(True, "last", "inventory: index on products.sku exists"),
    "db_pool_size": Knob(8, "min", "inventory: database connections"),
    "db_pool_timeout_ms": Knob(2000.0, "min", "inventory: wait for a free connection"),
    "db_hold_ms": Knob(0.0, "sum", "inventory: extra time each transaction holds its connection"),
    "search_algorithm": Knob(
        "indexed", "last", "inventory: how /search matches (indexed|quadratic)"
    ),
    "search_limit": Knob(50, "last", "inventory: rows a search ranks"),
    "worker_processing_ms": Knob(5.0, "sum", "worker: time to fulfil one order"),
    "worker_concurrency": Knob(1, "max", "worker: orders fulfilled at once (consumers)"),
    "queue_capacity": Knob(10_000, "min", "queue: messages held before it refuses with 503"),
    "enqueue_async": Knob(False, "any", "orders: answer before the queue has the order"),
    "threadpool_size": Knob(8, "min", "inventory: threads running database work"),
    "db_io_ms": Knob(0.0, "sum", "inventory: blocking I/O each query waits for, on its thread"),
    "db_leak_ratio": Knob(
        0.0, "max", "inventory: share of transactions that never give back their connection"
    ),
    "db_reclaim_after_ms": Knob(
        0.0, "min", "inventory: take back a connection held this long (0 = never)"
    ),
    # stale-read, cache-invalidation-race, cache-warming-failure, hot-key
    "cache_invalidate_on_write": Knob(
        False, "any", "gateway: delete a product's cache entry once an order changed it"
    ),
    "cache_leases": Knob(
        False, "any", "gateway: fill the cache only with the lease of its miss (deletes revoke it)"
    ),
    "cache_flush_every_s": Knob(
        0.0, "min", "cache: come back empty every N s, as a restart without persistence does"
    ),
    "cache_warm_start": Knob(
        False, "any", "cache: snapshot entries to disk each second, reload them after a restart"
    ),
    "l1_cache_ttl_ms": Knob(0.0, "max", "gateway: keep products in its own memory this long"),
    # tail-latency
    "fanout": Knob(0, "max", "gateway: related products a product read fetches at once"),
    "hedge_after_ms": Knob(
        0.0, "min", "gateway: a second stock read for one unanswered this long (0 = off)"
    ),
    # malformed-response
    "malformed_ratio": Knob(
        0.0, "max", "inventory: share of reservations answered 200 in a shape callers do not know"
    ),
    "client_validate": Knob(False, "any", "a 200 without the fields the caller needs is a failure"),
    # concurrency: double-write, lost-update, optimistic-locking-collision, phantom-read,
    # thundering-herd
    "idempotency_keys": Knob(
        False, "any", "inventory: a retry with a known request id gets the first reservation"
    ),
    "stock_write": Knob(
        "atomic",
        "last",
        "inventory: how a reservation takes stock (atomic|read-modify-write|version-check)",
    ),
    "stock_check_ms": Knob(
        0.0, "sum", "inventory: time between reading the stock and writing it back (a price check)"
    ),
    "stock_single_writer": Knob(
        False, "any", "inventory: reservations of one product are made one at a time"
    ),
    "report_every_ms": Knob(0.0, "max", "inventory: how often a sales report is read (0 = never)"),
    "report_render_ms": Knob(
        0.0, "sum", "inventory: time between the report's total and its lines"
    ),
    "report_snapshot": Knob(
        False, "any", "inventory: the report's two reads share one read transaction"
    ),
    "queue_wake": Knob(
        "one", "last", "queue: an arrival wakes one waiting consumer or all (one|all)"
    ),
    "worker_wait_notify": Knob(
        False, "any", "worker: consumers sleep until the queue wakes them, then claim a message"
    ),
    # infra helpers' scenarios: thread-pool-exhaustion, file-descriptor-exhaustion,
    # bulkhead-saturation, instance-crash-loop, dns-failure, cold-start
    "threadpool_floor": Knob(
        0, "max", "inventory: the fewest threads its pool has (a sized-up pool)"
    ),
    "fd_limit": Knob(
        0, "min", "inventory: its limit on open files, RLIMIT_NOFILE (0 = as started)"
    ),
    "fd_leak_per_query": Knob(
        0, "sum", "inventory: audit-log files each query opens, never closed"
    ),
    "fd_leak_fixed": Knob(False, "any", "inventory: files are closed after use (the fix)"),
    "server_workers": Knob(0, "min", "gateway: requests served at once, all routes (0 = no cap)"),
    "server_worker_wait_ms": Knob(500.0, "min", "gateway: wait for a free worker before a 503"),
    "bad_config_crash_after": Knob(
        0, "min", "inventory: a bad config kills it on this request after a start (0 = none)"
    ),
    "config_rollback": Knob(False, "any", "inventory: the last good config is back"),
    "client_connection_per_call": Knob(
        False, "any", "a new connection for every call, no keep-alive"
    ),
    "dns_delay_ms": Knob(0.0, "sum", "time the name server takes to answer a lookup"),
    "dns_failure_ratio": Knob(0.0, "max", "share of lookups the name server fails"),
    "dns_cache_ttl_s": Knob(0.0, "max", "how long the resolver keeps an answer (0 = no cache)"),
    "price_table_lazy": Knob(False, "any", "inventory: builds its price list on first use"),
    "price_table_build_ms": Knob(0.0, "sum", "inventory: CPU time one price-list build takes"),
    "warm_before_ready": Knob(False, "any", "inventory: builds it once at start, requests wait"),
    # dbperf: n-plus-one, deadlock, row-lock-contention, serialization, lock-contention, gc-pause
    "listing_items": Knob(0, "max", "inventory: search results shown with their details"),
    "listing_batched": Knob(False, "any", "inventory: load those details in one IN (...) query"),
    "stock_ledger": Knob(False, "any", "inventory: reserve and ship also write the stock ledger"),
    "ledger_gap_ms": Knob(0.0, "max", "inventory: work between a transaction's two writes"),
    "ledger_lock_timeout_ms": Knob(5000.0, "last", "inventory: ledger transactions' lock wait"),
    "ledger_ordered": Knob(False, "any", "inventory: every transaction locks products first"),
    "db_deadlock_retries": Knob(0, "max", "inventory: retries of a transaction that deadlocked"),
    "hot_row_txn_ms": Knob(0.0, "max", "inventory: work an order does holding the hot row"),
    "short_transactions": Knob(False, "any", "inventory: that work before BEGIN, not inside"),
    "payload_history": Knob(0, "max", "inventory: price history in each search result"),
    "field_selection": Knob(False, "any", "gateway: ask inventory only for the fields it shows"),
    "lock_hold_ms": Knob(0.0, "sum", "inventory: I/O wait each stock read does inside a lock"),
    "lock_stripes": Knob(1, "max", "inventory: locks that section is split into, by product"),
    "gc_heap_objects": Knob(0, "max", "inventory: long-lived cyclic objects the process keeps"),
    "gc_churn_objects": Knob(0, "max", "inventory: cyclic objects each request builds"),
    "gc_freeze": Knob(False, "any", "inventory: gc.freeze() the long-lived heap"),
    "gc_acyclic": Knob(False, "any", "inventory: per-request objects without back-references"),
}

LOADGEN_KNOBS: dict[str, Knob] = {
    "rate_rps": Knob(5.0, "last", "simulated users' requests per second"),
    "read_ratio": Knob(0.8, "last", "share of product reads (the rest are orders and searches)"),
    "search_ratio": Knob(0.02, "last", "share of searches"),
    "hot_key_ratio": Knob(0.0, "max", "share of reads that ask for the same product"),
    "user_timeout_ms": Knob(2000.0, "min", "users' client timeout"),
    "user_retries": Knob(2, "last", "users' retries after a failure"),
    "user_backoff_ms": Knob(50.0, "last", "users' backoff base"),
    "user_jitter": Knob(False, "any", "users' backoff randomised"),
    "user_retry_budget": Knob(0.0, "last", "users' retries as a share of requests (0 = no budget)"),
    "max_in_flight": Knob(400, "min", "cap on concurrent user requests (protects the sandbox)"),
    # stale-read, cache-invalidation-race, lost-update, optimistic-locking-collision
    "hot_order_ratio": Knob(0.0, "max", "share of orders for the same product (a flash sale)"),
}

HOP_KNOBS: dict[str, Knob] = {
    "latency_ms": Knob(0.0, "sum", "delay per chunk each way"),
    "jitter_ms": Knob(0.0, "sum", "random +/- around the delay"),
    "bandwidth_kbps": Knob(0.0, "min", "bandwidth cap (0 = unlimited)"),
    "loss_percent": Knob(0.0, "max", "share of chunks delayed by a retransmission"),
    "reset_percent": Knob(0.0, "max", "share of connections reset"),
    "timeout": Knob(False, "any", "data stops flowing"),
    "partition": Knob(False, "any", "blackhole: nothing passes, connections hang"),
    # partial-response, connection-reset
    "limit_bytes": Knob(0, "min", "bytes a connection carries back before it is closed (0 = off)"),
    "reset_response_percent": Knob(0.0, "max", "share of responses cut by a reset midway"),
}


def knobs_for(target: str) -> dict[str, Knob]:
    if target.startswith("hop:"):
        return HOP_KNOBS
    if target == "loadgen":
        return LOADGEN_KNOBS
    return SERVICE_KNOBS


def combine(knob: Knob, values: Iterable[Any]) -> Any:
    values = list(values)
    if not values:
        return knob.default
    if knob.combine == "sum":
        return knob.default + sum(values)
    if knob.combine == "max":
        return max([knob.default, *values])
    if knob.combine == "min":
        # 0 means "off" for caps; an owner's positive cap always wins over it.
        present = [v for v in values if v]
        return min(present) if present else knob.default
    if knob.combine == "any":
        return bool(knob.default) or any(values)
    return values[-1]


def knobs_effective(owners: Iterable[KnobSettings], targets: Iterable[str]) -> KnobSettings:
    """Every knob of every target, owners' settings combined over the defaults."""
    owners = list(owners)
    effective: KnobSettings = {}
    for target in targets:
        table = knobs_for(target)
        effective[target] = {
            name: combine(knob, [o[target][name] for o in owners if name in o.get(target, {})])
            for name, knob in table.items()
        }
    return effective


def knob_settings_check(settings: Mapping[str, Mapping[str, Any]], targets: Iterable[str]) -> None:
    """Refuses knobs or targets that do not exist: a typo must not silently do nothing."""
    known_targets = set(targets)
    for target, knobs in settings.items():
        if target not in known_targets:
            raise KeyError(f"unknown target {target!r}; known: {', '.join(sorted(known_targets))}")
        table = knobs_for(target)
        for name in knobs:
            if name not in table:
                raise KeyError(f"unknown knob {name!r} on {target}")


def knobs_fingerprint(knobs: Mapping[str, Any]) -> int:
    """A checksum of a whole knob set: a service reports its own, the supervisor compares
    it with the one it means the service to have, and sends the knobs again on a mismatch."""
    canonical = json.dumps(dict(knobs), sort_keys=True, separators=(",", ":"))
    return zlib.crc32(canonical.encode())
