"""Mitigations: the answers real systems give, each a setting of real mechanisms."""

from __future__ import annotations

from typing import Any

from sandbox.knobs import KnobSettings
from sandbox.spec import Mitigation, Parameter

CALLERS = ("gateway", "orders", "worker")


def _all_callers(**knobs: Any) -> KnobSettings:
    return {service: dict(knobs) for service in CALLERS}


MITIGATION_LIST = [
    Mitigation(
        slug="circuit-breaker",
        title="Circuit breaker",
        summary="Stop calling a dependency that keeps failing; fail fast, probe again later.",
        apply=lambda p: _all_callers(
            client_breaker=True,
            client_breaker_threshold=p["failure_threshold"],
            client_breaker_cooldown_ms=p["cooldown_ms"],
        ),
        parameters=(
            Parameter("failure_threshold", "float", 0.5, "failure ratio that opens it", 0.1, 1.0),
            Parameter("cooldown_ms", "int", 2000, "how long it stays open", 100, 60_000, unit="ms"),
        ),
    ),
    Mitigation(
        slug="retry-budget",
        title="Retry budget",
        summary="Retries may be at most a share of calls, so retries cannot multiply load.",
        apply=lambda p: {
            **_all_callers(client_retry_budget=p["ratio"]),
            "loadgen": {"user_retry_budget": p["ratio"]},
        },
        parameters=(Parameter("ratio", "float", 0.1, "retries per call allowed", 0.01, 1.0),),
    ),
    Mitigation(
        slug="jitter",
        title="Backoff with jitter",
        summary="Randomise the wait before a retry so many clients do not retry in step.",
        apply=lambda p: {**_all_callers(client_jitter=True), "loadgen": {"user_jitter": True}},
    ),
    Mitigation(
        slug="retries",
        title="More retries, with jitter",
        summary="Retry transient failures a few more times, spread out.",
        apply=lambda p: _all_callers(client_retries=p["retries"], client_jitter=True),
        parameters=(Parameter("retries", "int", 4, "retries per call", 1, 8),),
    ),
    Mitigation(
        slug="bulkhead",
        title="Bulkhead",
        summary="Cap concurrent calls to each dependency so one slow dependency cannot take "
        "every connection and thread.",
        apply=lambda p: _all_callers(client_bulkhead=p["limit"]),
        parameters=(Parameter("limit", "int", 8, "concurrent calls per dependency", 1, 256),),
    ),
    Mitigation(
        slug="rate-limit",
        title="Rate limit at the edge",
        summary="Admit only what the system can serve; refuse the rest with 429 at once.",
        apply=lambda p: {"gateway": {"rate_limit_rps": p["rate_rps"]}},
        parameters=(Parameter("rate_rps", "float", 8.0, "requests per second admitted", 1, 1000),),
    ),
    Mitigation(
        slug="timeouts",
        title="Tight timeouts",
        summary="Give up on a call (or a wait for a connection) quickly instead of queueing.",
        apply=lambda p: {
            **_all_callers(client_timeout_ms=p["timeout_ms"]),
            "inventory": {"db_pool_timeout_ms": p["pool_timeout_ms"]},
        },
        parameters=(
            Parameter("timeout_ms", "int", 150, "timeout of each call", 10, 10_000, unit="ms"),
            Parameter(
                "pool_timeout_ms", "int", 50, "wait for a database connection", 1, 10_000, unit="ms"
            ),
        ),
    ),
    Mitigation(
        slug="longer-cache-ttl",
        title="Cache longer",
        summary="Keep entries longer so more reads never reach the slow dependency.",
        apply=lambda p: {"gateway": {"cache_ttl_s": p["ttl_s"]}},
        parameters=(Parameter("ttl_s", "float", 60.0, "cache TTL", 1, 3600, unit="s"),),
    ),
    Mitigation(
        slug="cache-ttl-jitter",
        title="TTL jitter",
        summary="Spread expiry times so keys cached together do not expire together.",
        apply=lambda p: {"gateway": {"cache_ttl_jitter": True}},
    ),
    Mitigation(
        slug="request-coalescing",
        title="Request coalescing",
        summary="Concurrent misses for one key share a single backend fetch (single flight).",
        apply=lambda p: {"gateway": {"coalescing": True}},
    ),
    Mitigation(
        slug="relative-ttl",
        title="Durations, not timestamps",
        summary="Send TTLs as durations so each machine's clock measures them; skew stops mattering.",
        apply=lambda p: {"gateway": {"cache_relative_ttl": True}},
    ),
    Mitigation(
        slug="index",
        title="Add the index",
        summary="Index products.sku so a lookup reads a few pages, not the whole table.",
        apply=lambda p: {"inventory": {"db_index": True}},
    ),
    Mitigation(
        slug="bounded-algorithm",
        title="Linear ranking",
        summary="Rank search results with counts (O(n)) instead of pairwise comparison (O(n^2)).",
        apply=lambda p: {"inventory": {"search_algorithm": "indexed"}},
    ),
    Mitigation(
        slug="recycle-workers",
        title="Recycle workers",
        summary="Restart a service after a number of requests, so a leak never reaches the limit.",
        apply=lambda p: {
            s: {"max_requests": p["max_requests"]} for s in ("gateway", "orders", "inventory")
        },
        parameters=(
            Parameter("max_requests", "int", 300, "requests before a restart", 50, 100_000),
        ),
    ),
    Mitigation(
        slug="deprioritise-batch",
        title="Deprioritise batch work",
        summary="Give batch work a small CPU budget of its own and the lowest priority, so "
        "requests are served first.",
        apply=lambda p: {
            s: {"nice": 19, "background_cpu_cap": p["cpu_cap"]} for s in ("worker", "queue")
        },
        parameters=(
            Parameter(
                "cpu_cap", "float", 0.2, "share of a core each batch process may use", 0.05, 1.0
            ),
        ),
    ),
    Mitigation(
        slug="disk-cleanup",
        title="Rotate and clean up",
        summary="Rotate the runaway file away and stop it growing back.",
        apply=lambda p: {
            s: {"disk_cleanup": True} for s in ("gateway", "orders", "inventory", "worker")
        },
    ),
]

MITIGATION_LIST += [
    Mitigation(
        slug="async-handoff",
        title="Hand off asynchronously",
        summary="Answer once the order is reserved and hand it to the queue in the background, "
        "so the slow queue is off the user's path (the order is at risk until it lands).",
        apply=lambda p: {"orders": {"enqueue_async": True}},
    ),
    Mitigation(
        slug="more-consumers",
        title="Scale out consumers",
        summary="Fulfil several orders at once, so the queue drains faster than it fills.",
        apply=lambda p: {"worker": {"worker_concurrency": p["consumers"]}},
        parameters=(Parameter("consumers", "int", 8, "orders fulfilled at once", 1, 32),),
    ),
    Mitigation(
        slug="reclaim-abandoned",
        title="Reclaim abandoned connections",
        summary="The pool takes back a connection checked out for too long, logging where "
        "it leaked, so a leak cannot drain the pool.",
        apply=lambda p: {"inventory": {"db_reclaim_after_ms": p["after_ms"]}},
        parameters=(
            Parameter(
                "after_ms",
                "int",
                500,
                "hold time after which it is taken back",
                100,
                60_000,
                unit="ms",
            ),
        ),
    ),
    Mitigation(
        slug="pagination",
        title="Paginate",
        summary="Return results a page at a time: each query reads and ranks a bounded number "
        "of rows, whatever the data grows to.",
        apply=lambda p: {"inventory": {"search_limit": p["page_size"]}},
        parameters=(Parameter("page_size", "int", 50, "rows per page", 10, 200),),
    ),
]

# dbperf: n-plus-one-query, deadlock, row-lock-contention, serialization-overhead,
# lock-contention, gc-pause
MITIGATION_LIST += [
    Mitigation(
        slug="eager-loading",
        title="Eager loading",
        summary="Load the details of every listed item in one batched query (IN (...)), "
        "not one query per item.",
        apply=lambda p: {"inventory": {"listing_batched": True}},
    ),
    Mitigation(
        slug="lock-ordering",
        title="One lock order, and retry",
        summary="Every transaction takes its locks at the start in the same order (products, "
        "then the ledger), so waits are a queue, never a cycle: a lock timeout sized for a "
        "queue, and a retry for a transaction that still runs out of it.",
        apply=lambda p: {
            "inventory": {
                "ledger_ordered": True,
                "ledger_lock_timeout_ms": 2000,
                "db_deadlock_retries": 3,
            }
        },
    ),
    Mitigation(
        slug="short-transactions",
        title="Short transactions",
        summary="Do the work before BEGIN; the transaction only writes and commits, so it "
        "holds its locks for milliseconds.",
        apply=lambda p: {"inventory": {"short_transactions": True}},
    ),
    Mitigation(
        slug="field-selection",
        title="Select fields",
        summary="Callers ask only for the fields they show (a sparse fieldset); the server "
        "serialises nothing else.",
        apply=lambda p: {"gateway": {"field_selection": True}},
    ),
    Mitigation(
        slug="lock-striping",
        title="Finer-grained locks",
        summary="Split one lock into many, chosen by a hash of the product, so requests for "
        "different products no longer wait for each other.",
        apply=lambda p: {"inventory": {"lock_stripes": p["stripes"]}},
        parameters=(Parameter("stripes", "int", 64, "locks the one lock becomes", 2, 1024),),
    ),
    Mitigation(
        slug="break-cycles-and-freeze",
        title="Break cycles, freeze the long-lived heap",
        summary="Per-request objects no longer point back at their parents, so reference "
        "counting frees them and the collector has no garbage to find; gc.freeze() moves the "
        "long-lived heap out of the collections' sight.",
        apply=lambda p: {"inventory": {"gc_freeze": True, "gc_acyclic": True}},
    ),
]

MITIGATIONS = {m.slug: m for m in MITIGATION_LIST}
