from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import MetricSpec, Parameter, Scenario

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
        load_rps=40,
        load_mix={"hot_key_ratio": 0.7},
    ),
]
