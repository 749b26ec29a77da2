from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import MetricSpec, Parameter, Scenario

INJECTED = MetricSpec(
    "sdlab_injected_faults_total", "counter", "Faults injected, by kind.", ("service", "kind")
)

SCENARIOS = [
    Scenario(
        slug="fixed-latency",
        category="latency",
        title="A slow dependency",
        teaches="Latency adds up along a call chain; what a cache hides, users never wait for.",
        parameters=(
            Parameter(
                "delay_ms", "int", 200, "delay inventory adds to every request", 1, 5000, unit="ms"
            ),
        ),
        apply=lambda p: {"inventory": {"delay_ms": p["delay_ms"]}},
        metrics=(*REQUEST_METRICS, INJECTED),
        signature=signature(
            "inventory's median latency rises by the delay, and users' with it",
            15,
            above("inventory.p50_ms", 150),
            above("users.p95_ms", 150),
        ),
        mitigations=(
            answered_by(
                "longer-cache-ttl",
                "reads stay in the cache: users' median latency falls",
                40,
                below("users.p50_ms", ratio=0.5),
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="variable-latency",
        category="latency",
        title="A long tail",
        teaches="Averages hide the tail: p50 stays low while p99 explodes; a timeout and a retry cut it.",
        parameters=(
            Parameter("slow_ratio", "float", 0.08, "share of requests that are slow", 0.001, 0.5),
            Parameter("slow_ms", "int", 1000, "how much slower they are", 10, 10_000, unit="ms"),
        ),
        apply=lambda p: {"inventory": {"slow_ratio": p["slow_ratio"], "slow_ms": p["slow_ms"]}},
        metrics=(*REQUEST_METRICS, INJECTED),
        signature=signature(
            "inventory's p99 jumps while its median stays low",
            20,
            above("inventory.p99_ms", 500),
            below("inventory.p50_ms", 100),
        ),
        mitigations=(
            answered_by(
                "timeouts",
                "slow calls are abandoned and retried: users' p99 falls",
                30,
                below("users.p99_ms", ratio=0.6),
            ),
        ),
        load_rps=25,
    ),
]
