from sandbox.catalog._build import (
    CLIENT_METRICS,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import MetricSpec, Parameter, Scenario

BREAKER = MetricSpec(
    "sdlab_breaker_state", "gauge", "0 closed, 1 half-open, 2 open.", ("service", "dependency")
)
POOL = (
    MetricSpec("sdlab_pool_in_use", "gauge", "Resources of a pool in use.", ("service", "pool")),
    MetricSpec("sdlab_pool_waiting", "gauge", "Callers waiting for a pool.", ("service", "pool")),
    MetricSpec(
        "sdlab_pool_timeouts_total", "counter", "Callers that gave up waiting.", ("service", "pool")
    ),
)

SCENARIOS = [
    Scenario(
        slug="circuit-breaker",
        category="resilience",
        title="A dependency down",
        teaches="Calling a dependency that is down wastes time and load; a breaker fails fast and probes.",
        parameters=(
            Parameter(
                "failure_ratio", "float", 1.0, "share of inventory requests failing", 0.5, 1.0
            ),
        ),
        apply=lambda p: {"inventory": {"error_ratio": p["failure_ratio"]}},
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS, BREAKER),
        signature=signature(
            "inventory fails every call and users see errors",
            15,
            above("inventory.error_ratio", 0.9),
            above("users.error_ratio", 0.2),
        ),
        mitigations=(
            answered_by(
                "circuit-breaker",
                "breakers open and inventory stops being called",
                30,
                above("gateway.breaker_open", 0.5),
                below("inventory.rps", ratio=0.5),
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="retry-storm",
        category="resilience",
        title="A retry storm",
        teaches="Retries at every layer multiply: a slow dependency gets many times the users' traffic.",
        parameters=(
            Parameter("delay_ms", "int", 300, "how slow inventory becomes", 50, 5000, unit="ms"),
            Parameter("retries", "int", 3, "retries at each layer", 1, 6),
        ),
        apply=lambda p: {
            "inventory": {"delay_ms": p["delay_ms"]},
            "gateway": {
                "client_timeout_ms": 250,
                "client_retries": p["retries"],
                "client_backoff_ms": 10,
                "cache_enabled": False,
            },
            "orders": {
                "client_timeout_ms": 250,
                "client_retries": p["retries"],
                "client_backoff_ms": 10,
            },
            "loadgen": {
                "user_retries": p["retries"],
                "user_timeout_ms": 1000,
                "user_backoff_ms": 10,
            },
        },
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            MetricSpec(
                "sdlab_user_attempts_total", "counter", "Requests users sent.", ("service", "kind")
            ),
        ),
        signature=signature(
            "inventory's request rate rises to several times the users' rate",
            20,
            above("inventory.rps", ratio=3.0, of="users.rps"),
        ),
        mitigations=(
            answered_by(
                "retry-budget",
                "with a budget at every layer the amplification collapses",
                40,
                below("inventory.rps", ratio=2.0, of="users.rps"),
            ),
        ),
        load_rps=10,
    ),
    Scenario(
        slug="connection-pool-exhaustion",
        category="resilience",
        title="The connection pool runs dry",
        teaches="Long transactions hold connections; callers queue for the pool and latency explodes.",
        parameters=(
            Parameter("pool_size", "int", 2, "database connections", 1, 32),
            Parameter(
                "hold_ms",
                "int",
                250,
                "time each transaction keeps its connection",
                10,
                5000,
                unit="ms",
            ),
        ),
        apply=lambda p: {"inventory": {"db_pool_size": p["pool_size"], "db_hold_ms": p["hold_ms"]}},
        metrics=(*REQUEST_METRICS, *POOL),
        signature=signature(
            "every connection is taken, callers wait for one, users wait too",
            20,
            above("inventory.pool_waiting", 1),
            above("users.p95_ms", 500),
        ),
        mitigations=(
            answered_by(
                "timeouts",
                "waiting for a connection is cut short: nobody queues for the pool, inventory answers fast",
                30,
                below("inventory.pool_waiting", ratio=0.5),
                below("inventory.p99_ms", ratio=0.5),
            ),
        ),
        load_rps=20,
    ),
]
