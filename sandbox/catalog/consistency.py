"""Caching and consistency: a cache that serves what the database no longer holds."""

from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

STALE_READS = MetricSpec(
    "sdlab_gateway_stale_reads_total",
    "counter",
    "Reads served from a cache with stock an order already took, by cause.",
    ("service", "cause"),
)

SCENARIOS = [
    Scenario(
        slug="stale-read",
        category="caching",
        title="Stale reads after writes",
        teaches="A cache that is not told about writes serves the old value until its TTL runs out.",
        parameters=(
            Parameter("ttl_s", "float", 30.0, "how long products stay cached", 1, 300, unit="s"),
            Parameter(
                "hot_orders",
                "float",
                0.5,
                "share of orders that buy the most-read product",
                0.05,
                1,
            ),
        ),
        apply=lambda p: {
            "gateway": {"cache_ttl_s": p["ttl_s"]},
            "loadgen": {"hot_order_ratio": p["hot_orders"]},
        },
        metrics=(*REQUEST_METRICS, STALE_READS),
        signature=signature(
            "reads of the product being bought show stock that orders already took",
            20,
            above("gateway.stale_reads_rps", 2.0, ratio=4),
        ),
        mitigations=(
            answered_by(
                "invalidate-on-write",
                "each order deletes the product's entry: the next read fetches the new stock",
                20,
                below("gateway.stale_reads_rps", ratio=0.3),
            ),
        ),
        explanation=Explanation(
            what_happens="A product everyone is looking at is also the one everyone is buying. Its page is cached for a long time to spare inventory, and the orders that reserve its stock go straight to inventory: nobody tells the cache. Until the entry expires, every reader sees stock that has already been sold.",
            why="Cache-aside caches a copy, and a copy does not change when the original does. The only thing that ends it is the TTL, so a read can be as old as the TTL: the longer the TTL (the more load it saves) and the more often the product is written, the more reads are stale.",
            what_to_look_at="`gateway.stale_reads_rps`: reads served from the cache with more stock than the last order left (stock only goes down, so it orders a product's versions). `gateway.stale_read_ratio` is the share of product reads that were stale; the `cause` label says `not_invalidated`.",
            how_systems_answer="Delete (invalidate) the entry when the write commits, so the next read fetches the new value; or write the new value through to the cache with the write; keep TTLs short where freshness matters, as a bound on how stale a read can get; and where a user must see their own write, read it from the primary for a moment after it.",
            further_reading=(
                "[Caching challenges and strategies (Amazon Builders' Library)](https://aws.amazon.com/builders-library/caching-challenges-and-strategies/)",
                "[Cache-aside pattern (Azure Architecture Center)](https://learn.microsoft.com/en-us/azure/architecture/patterns/cache-aside)",
                "[Scaling Memcache at Facebook](https://www.usenix.org/conference/nsdi13/technical-sessions/presentation/nishtala)",
            ),
        ),
        load_rps=30,
        load_mix={"hot_key_ratio": 0.5},
    ),
    Scenario(
        slug="cache-invalidation-race",
        category="caching",
        title="Invalidation race: a stale fill",
        teaches="Deleting on write is not enough: a slow read can fill the cache with the old value after the delete.",
        parameters=(
            Parameter(
                "read_latency_ms",
                "int",
                200,
                "delay each way between the gateway and inventory",
                20,
                1000,
                unit="ms",
            ),
            Parameter("ttl_s", "float", 30.0, "how long products stay cached", 1, 300, unit="s"),
        ),
        apply=lambda p: {
            "gateway": {"cache_invalidate_on_write": True, "cache_ttl_s": p["ttl_s"]},
            "hop:gateway->inventory": {"latency_ms": p["read_latency_ms"]},
            "loadgen": {"hot_order_ratio": 0.5},
        },
        metrics=(
            *REQUEST_METRICS,
            STALE_READS,
            MetricSpec(
                "sdlab_cache_lease_refusals_total",
                "counter",
                "Fills refused: a delete revoked their lease.",
                ("service",),
            ),
        ),
        signature=signature(
            "fills that read the product before an order land after its delete, and stay",
            20,
            above("gateway.race_stale_reads_rps", 1.0, ratio=4),
        ),
        mitigations=(
            answered_by(
                "cache-leases",
                "the cache refuses a fill whose lease a delete revoked",
                20,
                below("gateway.race_stale_reads_rps", ratio=0.3),
                above("cache.lease_refusals_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="The gateway now deletes a product's cache entry whenever an order changes it. Yet stale reads remain: a reader misses, reads the product from inventory, and while its answer is on the way an order commits and deletes the (empty) entry. The reader then writes the old value into the cache, after the delete, and it stays there until the next order or the TTL.",
            why="Read-then-fill is two steps, and the delete can fall between them: the classic delete-before-fill race. The slower the read (here the hop from gateway to inventory is slow) and the more often the product is written, the wider the window. A long TTL, chosen because invalidation was meant to keep things fresh, makes each stale fill last.",
            what_to_look_at='`gateway.race_stale_reads_rps`: stale reads whose entry was filled after the gateway had already seen the order (`cause="filled_after_write"` on `sdlab_gateway_stale_reads_total`). With leases on, `cache.lease_refusals_rps` counts the fills the cache turned away.',
            how_systems_answer="Give each miss a lease (a token) and let a delete revoke it, so a fill with a revoked lease is refused (Facebook's memcache); or fill only with a version newer than the one cached or deleted (compare-and-set on a version); delete again a moment after the write (delayed double delete); and keep TTLs short enough to bound what slips through.",
            further_reading=(
                "[Scaling Memcache at Facebook (leases, section 3.2.1)](https://www.usenix.org/conference/nsdi13/technical-sessions/presentation/nishtala)",
                "[Caching challenges and strategies (Amazon Builders' Library)](https://aws.amazon.com/builders-library/caching-challenges-and-strategies/)",
                "[Redis: client-side caching and invalidation](https://redis.io/docs/latest/develop/reference/client-side-caching/)",
            ),
        ),
        load_rps=40,
        load_mix={"hot_key_ratio": 0.6},
    ),
]
