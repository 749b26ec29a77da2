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
        summary="The pool takes back a connection checked out for too long, logging the query "
        "that leaked it, so a leak cannot drain the pool (set too short, it would take "
        "connections from slow but honest transactions).",
        apply=lambda p: {"inventory": {"db_reclaim_after_ms": p["after_ms"]}},
        parameters=(
            Parameter(
                "after_ms",
                "int",
                100,
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

# Added for timeout-cascade, partial-response, connection-reset, tail-latency,
# missing-timeout, malformed-response.
MITIGATION_LIST += [
    Mitigation(
        slug="timeout-budget",
        title="Timeouts budgeted per layer",
        summary="Each caller waits longer than its callee's whole budget (timeout times "
        "attempts), deeper calls get shorter timeouts, and only the deepest layer retries.",
        apply=lambda p: {
            "gateway": {"client_timeout_ms": 1800, "client_retries": 0},
            "orders": {"client_timeout_ms": 400, "client_retries": 1},
        },
    ),
    Mitigation(
        slug="hedged-requests",
        title="Hedged requests",
        summary="Send a second copy of a stock read still unanswered after about inventory's "
        "p95 and take the first answer: a little more load, far less tail.",
        apply=lambda p: {"gateway": {"hedge_after_ms": p["after_ms"]}},
        parameters=(
            Parameter("after_ms", "int", 50, "wait before the second copy", 1, 5000, unit="ms"),
        ),
    ),
    Mitigation(
        slug="validate-responses",
        title="Validate responses",
        summary="Check that an answer has the fields the caller needs; a 200 without them "
        "counts as a failed call, retried and seen by the breaker, not as a crash.",
        apply=lambda p: _all_callers(client_validate=True),
    ),
]

# concurrency: double-write, lost-update, optimistic-locking-collision, phantom-read,
# thundering-herd
MITIGATION_LIST += [
    Mitigation(
        slug="idempotency-keys",
        title="Idempotency keys",
        summary="The client's request id is stored with the order in the same transaction; "
        "a retry with a known id gets the first result back instead of a second order.",
        apply=lambda p: {"inventory": {"idempotency_keys": True}},
    ),
    Mitigation(
        slug="atomic-update",
        title="Atomic update",
        summary="Let the database subtract in one statement (stock = stock - 1), under its own "
        "row lock, instead of writing back a value read earlier.",
        apply=lambda p: {"inventory": {"stock_write": "atomic"}},
    ),
    Mitigation(
        slug="version-check",
        title="Optimistic version check",
        summary="Write only if the row's version is still the one read (WHERE version = ?); "
        "a write that matches no row was overtaken and is retried from a fresh read.",
        apply=lambda p: {"inventory": {"stock_write": "version-check"}},
    ),
    Mitigation(
        slug="single-writer",
        title="One writer per hot row",
        summary="Route the writes of one product through a single writer, one at a time: "
        "they queue briefly instead of colliding and redoing their work.",
        apply=lambda p: {"inventory": {"stock_single_writer": True}},
    ),
    Mitigation(
        slug="snapshot-reads",
        title="One snapshot per report",
        summary="Run all of a report's reads in one read transaction, so they all see the "
        "database as it was at one moment.",
        apply=lambda p: {"inventory": {"report_snapshot": True}},
    ),
    Mitigation(
        slug="wake-one",
        title="Wake one waiter",
        summary="An arrival wakes a single sleeping consumer (notify, not notify_all), so one "
        "message brings one claim instead of a herd.",
        apply=lambda p: {"queue": {"queue_wake": "one"}},
    ),
]

# infra helpers' scenarios: thread-pool-exhaustion, file-descriptor-exhaustion, ...
MITIGATION_LIST += [
    Mitigation(
        slug="bigger-threadpool",
        title="Size the thread pool for blocking I/O",
        summary="Give blocking work enough threads: a thread waiting on I/O costs memory, not "
        "CPU, so the pool is sized by concurrency (rate x wait), not by cores.",
        apply=lambda p: {"inventory": {"threadpool_floor": p["threads"]}},
        parameters=(Parameter("threads", "int", 16, "threads in inventory's pool", 2, 64),),
    ),
    Mitigation(
        slug="close-files",
        title="Close what you open",
        summary="Deploy the fix: every file is opened in a `with` block and closed after use, "
        "and the leaked ones go with the old code.",
        apply=lambda p: {"inventory": {"fd_leak_fixed": True}},
    ),
    Mitigation(
        slug="rollback-config",
        title="Roll back the config",
        summary="Put the last good config back: the process stays up again; find the bad "
        "value later, with the service healthy.",
        apply=lambda p: {"inventory": {"config_rollback": True}},
    ),
    Mitigation(
        slug="dns-cache",
        title="Cache name lookups",
        summary="Keep each answer for a TTL, so a connection does not wait for (or fail "
        "with) the name server: one lookup per name per TTL, not one per connection.",
        apply=lambda p: _all_callers(dns_cache_ttl_s=p["ttl_s"]),
        parameters=(
            Parameter("ttl_s", "float", 30.0, "how long an answer is kept", 1, 3600, unit="s"),
        ),
    ),
    Mitigation(
        slug="readiness-gate",
        title="Warm up before taking traffic",
        summary="A new process warms up first (one build of what it needs, at start) and "
        "reports ready only then; requests wait for that one warm-up instead of each "
        "paying for, and fighting over, its own.",
        apply=lambda p: {"inventory": {"warm_before_ready": True}},
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

# stale-read, cache-invalidation-race, cache-warming-failure, hot-key
MITIGATIONS.update(
    (m.slug, m)
    for m in (
        Mitigation(
            slug="invalidate-on-write",
            title="Invalidate on write",
            summary="When an order changes a product, delete its cache entry: the next read "
            "fetches the new stock.",
            apply=lambda p: {"gateway": {"cache_invalidate_on_write": True}},
        ),
        Mitigation(
            slug="cache-leases",
            title="Fill with a lease",
            summary="A miss gets a lease from the cache; a write's delete revokes it, so a fill "
            "that read the old value before the write is refused.",
            apply=lambda p: {"gateway": {"cache_leases": True}},
        ),
        Mitigation(
            slug="cache-warm-start",
            title="Warm start from a snapshot",
            summary="The cache saves its entries to disk every second and loads them back "
            "when it restarts, so it comes back warm.",
            apply=lambda p: {"cache": {"cache_warm_start": True}},
        ),
        Mitigation(
            slug="l1-cache",
            title="Local (L1) cache",
            summary="Each gateway keeps the products it reads most in its own memory for a "
            "moment, so a hot key stops costing a trip to the shared cache.",
            apply=lambda p: {"gateway": {"l1_cache_ttl_ms": p["ttl_ms"]}},
            parameters=(
                Parameter(
                    "ttl_ms", "int", 1000, "how long a local copy lives", 50, 10_000, unit="ms"
                ),
            ),
        ),
    )
)
