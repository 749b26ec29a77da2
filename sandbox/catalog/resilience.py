from sandbox.catalog._build import (
    CLIENT_METRICS,
    POOL,
    QUEUE,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

BREAKER = MetricSpec(
    "sdlab_breaker_state", "gauge", "0 closed, 1 half-open, 2 open.", ("service", "dependency")
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
        explanation=Explanation(
            what_happens="Inventory fails every call. The gateway, orders and the worker keep calling it anyway, each call waiting for its failure and its retries, and users see errors.",
            why="A caller that does not remember past failures pays the full price of each new one: a connection, a request, a timeout or an error, and retries. That wastes the caller's resources and keeps load on a dependency that may be failing precisely because of load.",
            what_to_look_at="`inventory.error_ratio` near 1 and `users.error_ratio` high. With a breaker, `gateway.breaker_open` turns 1 and `inventory.rps` falls: callers stop calling.",
            how_systems_answer="Circuit breakers (Hystrix, resilience4j, Envoy's outlier detection, Polly) open when the recent failure ratio passes a threshold, fail calls at once while open, and let a single probe through after a cool-down to decide whether to close. Pair them with a fallback so an open breaker degrades the page instead of breaking it.",
            further_reading=(
                "[Martin Fowler: Circuit Breaker](https://martinfowler.com/bliki/CircuitBreaker.html)",
                "[Azure architecture: Circuit Breaker pattern](https://learn.microsoft.com/en-us/azure/architecture/patterns/circuit-breaker)",
                "Michael Nygard, *Release It!*, chapter on stability patterns",
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
        explanation=Explanation(
            what_happens="Inventory slows down past the callers' timeouts. Users, the gateway and orders each retry several times, and the retries multiply: inventory receives several times the traffic users send.",
            why="Retries at every layer compound. With three retries at each of three layers a single user request can become up to 4 x 4 x 4 = 64 attempts at the bottom. The dependency slowed down because it was busy, and the retries make it busier: a positive feedback loop that can keep a system down after the trigger is gone.",
            what_to_look_at="`inventory.rps` against `users.rps`: their ratio is the amplification. `gateway.client_retries_rps` and `orders.client_retries_rps` show where the retries come from.",
            how_systems_answer="Retry at one layer only, with exponential backoff and jitter; cap retries with a budget (a share of successful calls); make timeouts shorter at the bottom than at the top; and shed load when overloaded so queues do not grow.",
            further_reading=(
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
                "[Google SRE book: Addressing cascading failures](https://sre.google/sre-book/addressing-cascading-failures/)",
                "[Metastable failures in distributed systems (HotOS 2021)](https://sigops.org/s/conferences/hotos/2021/papers/hotos21-s11-bronson.pdf)",
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
        explanation=Explanation(
            what_happens="Inventory's database pool is small and each transaction keeps its connection longer than it needs to. Every connection is taken, new queries queue for one, and inventory's latency explodes although the database itself is idle.",
            why="A pool of N connections serves at most N transactions at once. By Little's law the pool can sustain N / hold-time transactions per second; above that, callers wait, and the wait is longer than any query. The bottleneck is the pool, not the database.",
            what_to_look_at="`inventory.pool_in_use` sits at the pool size, `inventory.pool_waiting` above zero; `users.p95_ms` rises. The database's query time stays low: the time goes to waiting for a connection.",
            how_systems_answer="Keep transactions short (no remote calls or user think time inside one), size pools from measured concurrency rather than guesses, and give the wait for a connection its own short timeout so callers fail fast instead of queueing.",
            further_reading=(
                "[HikariCP: About pool sizing](https://github.com/brettwooldridge/HikariCP/wiki/About-Pool-Sizing)",
                "[Little's law](https://en.wikipedia.org/wiki/Little%27s_law)",
                "[PostgreSQL: idle_in_transaction_session_timeout](https://www.postgresql.org/docs/current/runtime-config-client.html)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="queue-backlog",
        category="resilience",
        title="A queue backlog",
        teaches="When consumers are slower than producers a queue only grows: everything accepted waits longer and longer, though nothing fails.",
        parameters=(
            Parameter(
                "processing_ms", "int", 300, "time the worker takes per order", 50, 2000, unit="ms"
            ),
        ),
        apply=lambda p: {"worker": {"worker_processing_ms": p["processing_ms"]}},
        metrics=(*REQUEST_METRICS, *QUEUE),
        signature=signature(
            "orders arrive faster than the worker fulfils them: the queue and its oldest message's age climb",
            25,
            above("queue.depth", 30),
            above("queue.oldest_age_s", 5),
        ),
        mitigations=(
            answered_by(
                "more-consumers",
                "eight consumers fulfil faster than orders arrive: the backlog drains",
                40,
                below("queue.depth", 5),
            ),
        ),
        explanation=Explanation(
            what_happens="The fulfilment worker takes longer per order than orders take to arrive. Every order is still accepted (the queue is large), so users see no error at all, but the queue grows every second and each order waits longer to be shipped than the one before.",
            why="A queue absorbs bursts; it cannot absorb a sustained rate difference. With arrivals faster than departures the backlog grows linearly and, by Little's law, so does the wait: a queue of 300 orders drained at 3 per second means a 100-second delay for the next order. Nothing errors until the queue's bound or someone's patience is reached.",
            what_to_look_at="`queue.depth` and `queue.oldest_age_s` climb together while `worker.processed_rps` stays flat below the order rate. The request metrics are healthy: a backlog is invisible to RED metrics on the request path and visible only in the queue's own figures.",
            how_systems_answer="Alert on queue age (the oldest message), not only on depth; scale consumers on backlog (KEDA, SQS-based autoscaling); bound queues and apply backpressure; process newest-first or drop stale work when old results are worthless; keep a drain-rate margin so a backlog created by an incident can be worked off.",
            further_reading=(
                "[Avoiding insurmountable queue backlogs (Amazon Builders' Library)](https://aws.amazon.com/builders-library/avoiding-insurmountable-queue-backlogs/)",
                "[Azure architecture: Competing Consumers pattern](https://learn.microsoft.com/en-us/azure/architecture/patterns/competing-consumers)",
                "[Little's law](https://en.wikipedia.org/wiki/Little%27s_law)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
]

# infra helpers' scenarios
SCENARIOS += [
    Scenario(
        slug="bulkhead-saturation",
        category="resilience",
        title="One slow dependency takes every worker",
        teaches="Without bulkheads a slow dependency holds every worker of a shared pool, and "
        "routes that never call it fail too; a cap per dependency confines the damage.",
        parameters=(
            Parameter("delay_ms", "int", 3000, "how slow orders becomes", 1000, 10_000, unit="ms"),
            Parameter("workers", "int", 12, "gateway workers shared by every route", 10, 64),
        ),
        apply=lambda p: {
            "orders": {"delay_ms": p["delay_ms"]},
            "gateway": {"server_workers": p["workers"]},
        },
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS, *POOL),
        signature=signature(
            "orders hold every gateway worker: product reads, which never touch orders, fail too",
            20,
            above("gateway.workers_waiting", 1),
            below("users.read_success_ratio", 0.6),
        ),
        mitigations=(
            answered_by(
                "bulkhead",
                "orders may hold only a few workers: reads get the rest and succeed again",
                30,
                above("users.read_success_ratio", 0.95),
            ),
        ),
        explanation=Explanation(
            what_happens="Orders becomes slow. The gateway serves every route from one pool of workers, and each order call now holds its worker for seconds, through the client's timeouts and retries. Soon every worker is waiting on orders, and product reads (which need only the cache and inventory, both healthy) queue for a worker and fail.",
            why="A shared pool is shared fate. By Little's law the calls to a slow dependency occupy rate x duration workers: 10 orders a second held for 3 seconds need 30, more than twice what the pool has. Nothing limits how many of them one dependency may take, so the slowest dependency ends up with all of them, and the failure spreads to every route: one slow service takes down the whole front door.",
            what_to_look_at="`gateway.workers_busy` at the pool's size and `gateway.workers_waiting` above zero; `users.read_success_ratio` collapses though `inventory` and `cache` answer fast. With the bulkhead, calls to orders beyond its cap are refused at once (`gateway.client_rejected_rps`), order requests still fail, and reads recover.",
            how_systems_answer="Bulkheads: give each dependency (or each route) its own bounded pool or a cap on concurrent calls (resilience4j Bulkhead, Hystrix thread pools, Envoy's max requests per cluster), so a slow dependency can exhaust only its own share; add short timeouts and a circuit breaker so the slow calls are few and brief; and shed the work that cannot be served fast.",
            further_reading=(
                "[Azure architecture: Bulkhead pattern](https://learn.microsoft.com/en-us/azure/architecture/patterns/bulkhead)",
                "Michael Nygard, *Release It!*, chapter on stability patterns (Bulkheads)",
                "[resilience4j: Bulkhead](https://resilience4j.readme.io/docs/bulkhead)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
]
