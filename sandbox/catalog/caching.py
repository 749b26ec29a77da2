from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="cache-stampede",
        category="caching",
        title="Cache stampede",
        teaches="When a hot key expires, every request in flight misses at once and hits the backend.",
        parameters=(
            Parameter("ttl_s", "float", 1.0, "TTL of cached products", 0.2, 60, unit="s"),
            Parameter("recompute_ms", "int", 200, "time to rebuild an entry", 10, 5000, unit="ms"),
        ),
        apply=lambda p: {
            "gateway": {"cache_ttl_s": p["ttl_s"]},
            "inventory": {"delay_ms": p["recompute_ms"]},
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_gateway_backend_fetches_total",
                "counter",
                "Fetches past the cache.",
                ("service", "sku_class"),
            ),
        ),
        signature=signature(
            "each expiry of the hot key sends a crowd of fetches to inventory",
            20,
            above("gateway.hot_key_fetches_rps", 3.0),
        ),
        mitigations=(
            answered_by(
                "request-coalescing",
                "one fetch per expiry: the crowd waits for it",
                20,
                below("gateway.hot_key_fetches_rps", 1.5),
            ),
        ),
        explanation=Explanation(
            what_happens="The hot product is read by many users at once and lives in the cache with a short TTL. At each expiry every request in flight misses together, and each one goes to inventory to rebuild the same entry: a crowd of identical fetches, all slow, for one key.",
            why="Cache-aside has no memory of who is already rebuilding an entry. Between the first miss and the first write back there is a window (the rebuild time); every read of the key in that window misses too. The crowd grows with the read rate times the rebuild time, so the hotter and slower the key, the bigger the stampede.",
            what_to_look_at="`gateway.hot_key_fetches_rps`: fetches of the hot key past the cache. Without a stampede it is about one per TTL; during one it jumps to many per expiry. Inventory's request rate and latency rise in step with each expiry.",
            how_systems_answer="Let one caller rebuild and the others wait for it (request coalescing, single flight, a lock or lease per key), serve the stale value while one request refreshes it (stale-while-revalidate), refresh hot keys early with a probability that grows near expiry, and add jitter to TTLs so keys cached together do not expire together.",
            further_reading=(
                "[Scaling Memcache at Facebook (leases)](https://www.usenix.org/conference/nsdi13/technical-sessions/presentation/nishtala)",
                "[Optimal probabilistic cache stampede prevention (VLDB 2015)](https://www.vldb.org/pvldb/vol8/p886-vattani.pdf)",
                "[Caching challenges and strategies (Amazon Builders' Library)](https://aws.amazon.com/builders-library/caching-challenges-and-strategies/)",
            ),
        ),
        load_rps=40,
        load_mix={"hot_key_ratio": 0.7},
    ),
]
