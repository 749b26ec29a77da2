from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import MetricSpec, Parameter, Scenario

CACHE = (
    MetricSpec(
        "sdlab_cache_hits", "gauge", "Cache lookups that found a live entry (total).", ("service",)
    ),
    MetricSpec(
        "sdlab_cache_misses",
        "gauge",
        "Cache lookups that found nothing live (total).",
        ("service",),
    ),
    MetricSpec("sdlab_clock_skew_seconds", "gauge", "Offset of the service's clock.", ("service",)),
)

SCENARIOS = [
    Scenario(
        slug="clock-skew",
        category="infrastructure",
        title="Clock skew",
        teaches="Machines disagree about the time: an expiry written by one clock and read by another "
        "is wrong by the skew.",
        parameters=(
            Parameter(
                "skew_s", "float", 30.0, "how far ahead the cache's clock runs", -300, 300, unit="s"
            ),
        ),
        apply=lambda p: {"cache": {"clock_skew_s": p["skew_s"]}},
        metrics=(*REQUEST_METRICS, *CACHE),
        signature=signature(
            "every cache entry is born expired: the hit ratio collapses and inventory takes the reads",
            20,
            below("cache.hit_ratio", 0.05),
            above("gateway.backend_fetches_rps", ratio=1.3),
        ),
        mitigations=(
            answered_by(
                "relative-ttl",
                "TTLs sent as durations are measured by one clock: hits return",
                30,
                above("cache.hit_ratio", 0.15),
            ),
        ),
        load_rps=25,
    ),
    Scenario(
        slug="resource-starvation",
        category="infrastructure",
        title="A noisy neighbour inside",
        teaches="Batch work that eats the sandbox's CPU quota starves request handling next to it.",
        parameters=(
            Parameter("cpu_share", "float", 1.0, "share of a core the batch loop wants", 0.1, 1.0),
        ),
        # Two batch processes (fulfilment and the queue's own housekeeping) share the quota.
        apply=lambda p: {
            "worker": {"background_cpu_ratio": p["cpu_share"]},
            "queue": {"background_cpu_ratio": p["cpu_share"]},
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec("sdlab_process_cpu_seconds_total", "counter", "CPU time.", ("service",)),
        ),
        signature=signature(
            "the batch processes take the CPU and the gateway's latency climbs",
            20,
            above("worker.cpu_ratio", 0.2),
            above("gateway.p95_ms", ratio=2.0),
        ),
        mitigations=(
            answered_by(
                "deprioritise-batch",
                "with a small budget of its own the batch leaves the CPU to requests",
                30,
                below("gateway.p95_ms", ratio=0.6),
            ),
        ),
        load_rps=20,
        extra_requirements=("cpu-limit",),
    ),
]
