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
    Scenario(
        slug="cache-warming-failure",
        category="caching",
        title="Cold cache after a restart",
        teaches="A cache that comes back empty sends every read to the database until it warms up again.",
        parameters=(
            Parameter(
                "every_s", "float", 1.0, "time between restarts of the cache", 1, 120, unit="s"
            ),
            Parameter("ttl_s", "float", 30.0, "how long products stay cached", 5, 600, unit="s"),
        ),
        apply=lambda p: {
            "cache": {"cache_flush_every_s": p["every_s"]},
            "gateway": {"cache_ttl_s": p["ttl_s"]},
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_cache_restarts_total",
                "counter",
                "Times the cache came back, by how it started.",
                ("service", "start"),
            ),
            MetricSpec(
                "sdlab_cache_hits",
                "gauge",
                "Cache lookups that found a live entry (total).",
                ("service",),
            ),
            MetricSpec(
                "sdlab_cache_misses",
                "gauge",
                "Cache lookups that found nothing live (total).",
                ("service",),
            ),
        ),
        signature=signature(
            "after each restart the cache misses everything and inventory takes every read",
            20,
            below("cache.hit_ratio", ratio=0.5),
            above("gateway.backend_fetches_rps", ratio=1.3),
        ),
        mitigations=(
            answered_by(
                "cache-warm-start",
                "the cache reloads its snapshot: it comes back warm",
                # Each restart keeps what the last snapshot held, so the cache fills over
                # about one TTL (30 s): CI once read 1.67x (0.19 to 0.32) at 30 s.
                60,
                above("cache.hit_ratio", ratio=1.4),
                below("gateway.backend_fetches_rps", ratio=0.85),
            ),
        ),
        explanation=Explanation(
            what_happens="The cache is restarted (a deploy, a crash, a node replaced) and comes back empty. For a while every read misses and goes to inventory, which was sized for the few reads the warm cache let through. Here the restarts keep coming, once a second by default: a cache node in a crash loop, or a rolling deploy that takes one cache node down after another.",
            why="A cache's value is what it has learned: the working set it holds. A cache without persistence loses it all on restart, and the hit ratio starts again from zero; it only recovers as reads refill it one miss at a time, while the database takes the difference.",
            what_to_look_at='`cache.hit_ratio` falls and `gateway.backend_fetches_rps` (reads that went past the cache to inventory) rises in step with the restarts (`cache.flushes` counts them; `sdlab_cache_restarts_total{start="cold"}`). The longer the TTL, the more the warm cache was saving and the bigger the fall.',
            how_systems_answer="Warm the cache before it takes traffic: reload a snapshot (Redis RDB or AOF), replay the hot keys from the old node or from access logs, or prefetch the most popular keys; restart cache nodes one at a time with time to refill in between; coalesce misses so a cold key costs one fetch; and serve stale entries while refreshing.",
            further_reading=(
                "[Redis persistence (RDB and AOF)](https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/)",
                "[Caching challenges and strategies (Amazon Builders' Library)](https://aws.amazon.com/builders-library/caching-challenges-and-strategies/)",
                "[Scaling Memcache at Facebook (cold cluster warmup)](https://www.usenix.org/conference/nsdi13/technical-sessions/presentation/nishtala)",
            ),
        ),
        load_rps=40,
    ),
    Scenario(
        slug="hot-key",
        category="caching",
        title="Hot key",
        teaches="When most reads ask for one key, all of them land on the one cache node that holds it.",
        parameters=(
            Parameter("hot_share", "float", 0.8, "share of reads for the one product", 0.2, 0.95),
        ),
        apply=lambda p: {"loadgen": {"hot_key_ratio": p["hot_share"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_cache_top_key_share",
                "gauge",
                "Share of the last 5 seconds' lookups that asked for the busiest key.",
                ("service",),
            ),
            MetricSpec(
                "sdlab_gateway_l1_reads_total",
                "counter",
                "Product reads looked up in the gateway's own memory, by outcome.",
                ("service", "outcome"),
            ),
        ),
        signature=signature(
            "one key takes most of the cache's lookups",
            15,
            above("cache.top_key_share", 0.5),
        ),
        mitigations=(
            answered_by(
                "l1-cache",
                "the gateway answers the hot key from its own memory: the cache sees it once a second",
                20,
                below("cache.top_key_share", ratio=0.5),
                below("cache.rps", ratio=0.6),
            ),
        ),
        explanation=Explanation(
            what_happens="One product goes viral: most reads ask for it. Every one of them is a round trip to the cache, and a key lives on one cache node (one shard), so that node takes the whole crowd while the others idle. Adding nodes does not help: the key is still on one of them.",
            why="Caches and databases spread keys over shards by hashing the key, which spreads load only if load is spread over keys. Real access is skewed (a few products get most views) and sometimes extremely so; the busiest key sets the load of its shard, and one shard's limit becomes the whole system's.",
            what_to_look_at="`cache.top_key_share`: the share of the cache's lookups in the last 5 seconds that asked for its busiest key, as Redis' `--hotkeys` finds it. `cache.rps` is what the cache node serves; with the L1 cache on, `gateway.l1_hit_ratio` shows how many reads never left the gateway.",
            how_systems_answer="Keep hot keys in a small local (L1) cache in each application server for a moment, so the shared cache sees each hot key once per interval per server; split a hot key into copies (`key#1`..`key#n`) spread over shards and read one at random; replicate hot shards and read from replicas; and detect hot keys (sampling, `redis-cli --hotkeys`) before they saturate a node.",
            further_reading=(
                "[Redis: client-side caching](https://redis.io/docs/latest/develop/reference/client-side-caching/)",
                "[Caching challenges and strategies (Amazon Builders' Library)](https://aws.amazon.com/builders-library/caching-challenges-and-strategies/)",
                "[EVCache: Netflix's distributed in-memory cache](https://netflixtechblog.com/evcache-distributed-in-memory-datastore-for-cloud-c26a698c27f7)",
            ),
        ),
        load_rps=40,
    ),
]
