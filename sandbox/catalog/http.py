from sandbox.catalog._build import (
    CLIENT_METRICS,
    QUEUE,
    QUEUE_REFUSED,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="error-burst",
        category="http",
        title="Bursts of errors",
        teaches="A dependency that fails in bursts: retries inside a burst only add load; a breaker stops it.",
        parameters=(
            Parameter("burst_s", "float", 2.0, "length of each burst", 0.5, 30, unit="s"),
            Parameter("quiet_s", "float", 4.0, "time between bursts", 0.5, 60, unit="s"),
        ),
        apply=lambda p: {
            "inventory": {"error_burst_on_s": p["burst_s"], "error_burst_off_s": p["quiet_s"]}
        },
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS),
        signature=signature(
            "inventory answers 5xx in bursts and users see errors",
            20,
            above("inventory.error_ratio", 0.15),
            above("users.error_ratio", 0.01),
        ),
        mitigations=(
            answered_by(
                "circuit-breaker",
                "the gateway's breaker opens during bursts and rejects calls at once",
                30,
                above("gateway.client_rejected_rps", 0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Inventory fails every request for a few seconds, recovers for a few seconds, and fails again. During each burst the gateway's retries fail too, and users see errors.",
            why="Retries help against independent failures: a second try is likely to succeed. Inside a burst failures are correlated, so every retry fails as well and only adds load on a dependency that is already in trouble. The error ratio users see follows the burst pattern, not the retry count.",
            what_to_look_at="`inventory.error_ratio` swings with the bursts; `users.error_ratio` rises; `gateway.client_retries_rps` climbs during bursts without rescuing anything. Read the timeline: errors arrive in blocks, not evenly.",
            how_systems_answer="A circuit breaker notices the failure ratio of recent calls, stops calling for a cool-down, then lets a probe through; callers fail in microseconds instead of waiting and retrying. Retry budgets cap the extra load; fallbacks (a cached or default answer) keep pages useful while the breaker is open.",
            further_reading=(
                "[Martin Fowler: Circuit Breaker](https://martinfowler.com/bliki/CircuitBreaker.html)",
                "[Azure architecture: Circuit Breaker pattern](https://learn.microsoft.com/en-us/azure/architecture/patterns/circuit-breaker)",
                "[Google SRE book: Addressing cascading failures](https://sre.google/sre-book/addressing-cascading-failures/)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="intermittent-5xx",
        category="http",
        title="Intermittent 5xx",
        teaches="Retries hide transient errors from users, at the price of extra load on the dependency.",
        parameters=(
            Parameter(
                "error_ratio", "float", 0.3, "share of inventory requests failing", 0.01, 0.9
            ),
        ),
        apply=lambda p: {"inventory": {"error_ratio": p["error_ratio"]}},
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS),
        signature=signature(
            "inventory fails often, the gateway retries, users barely notice",
            15,
            above("inventory.error_ratio", 0.2),
            above("gateway.client_retries_rps", 1.0),
            above("users.success_ratio", 0.95),
        ),
        mitigations=(
            answered_by(
                "retry-budget",
                "retries are capped to a share of calls",
                30,
                below("gateway.client_retries_rps", ratio=0.6),
            ),
        ),
        explanation=Explanation(
            what_happens="A share of inventory's requests fail at random with 503. The gateway retries them and most retries succeed, so users barely notice; inventory, meanwhile, serves noticeably more requests than users make.",
            why="Independent transient errors are what retries are for: with a 30 % failure rate, two retries turn 30 % into under 3 %. The price is load: every retry is another request, and the extra traffic is largest exactly when the dependency is least healthy.",
            what_to_look_at="`inventory.error_ratio` is high while `users.success_ratio` stays near 1. `gateway.client_retries_rps` shows the hidden cost. Server-side error metrics and user-facing ones disagree: that gap is the retries.",
            how_systems_answer="Retry with exponential backoff and jitter, only idempotent requests, and only on errors that can succeed next time. Cap retries with a budget (a share of calls, as Finagle and gRPC do), so that when failures stop being transient the retries cannot multiply load.",
            further_reading=(
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
                "[Azure architecture: Retry pattern](https://learn.microsoft.com/en-us/azure/architecture/patterns/retry)",
                "[Finagle: retry budgets](https://twitter.github.io/finagle/guide/Clients.html#retries)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="429-throttling",
        category="http",
        title="Throttled, and retrying at once",
        teaches="A throttled client that retries 429s at once spends the quota on retries: throttling only works when clients back off.",
        parameters=(
            Parameter("limit_rps", "float", 5.0, "requests per second the gateway admits", 1, 50),
            Parameter("retries", "int", 3, "retries each user makes after a 429", 1, 6),
        ),
        apply=lambda p: {
            "gateway": {"rate_limit_rps": p["limit_rps"]},
            "loadgen": {"user_retries": p["retries"], "user_backoff_ms": 5},
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_rate_limited_total",
                "counter",
                "Requests refused by the rate limiter.",
                ("service",),
            ),
            MetricSpec(
                "sdlab_user_attempts_total",
                "counter",
                "Requests users sent, retries included.",
                ("service", "kind"),
            ),
        ),
        signature=signature(
            "most requests are refused with 429 and users send twice their requests or more",
            20,
            above("gateway.rate_limited_rps", 5),
            above("users.attempts_rps", ratio=2.0, of="users.rps"),
        ),
        mitigations=(
            answered_by(
                "retry-budget",
                "with a retry budget, users stop hammering the limit: attempts fall back to requests",
                30,
                below("users.attempts_rps", ratio=1.4, of="users.rps"),
            ),
        ),
        explanation=Explanation(
            what_happens="The gateway admits only a few requests per second and refuses the rest with 429 Too Many Requests. The simulated users treat a 429 like any failure and retry almost at once, several times, so the gateway sees two or three times the users' traffic, nearly all of it refused.",
            why="A rate limit protects a service by refusing what it cannot serve; refusing is cheap but not free. Clients that retry a 429 immediately turn one refusal into several, and because the limit is already spent, every retry is refused too. The useful work does not increase: only the noise does.",
            what_to_look_at="`gateway.rate_limited_rps` (refusals) and `users.attempts_rps` against `users.rps`: their ratio is the retry amplification. The users' success ratio barely changes whatever they retry, which is the point.",
            how_systems_answer="Servers send `Retry-After` with a 429 and clients honour it; clients back off exponentially with jitter, cap retries with a budget, and rate-limit themselves below the quota (a client-side token bucket). APIs document their limits and expose the remaining quota in headers so well-behaved clients can pace themselves.",
            further_reading=(
                "[RFC 6585: 429 Too Many Requests](https://www.rfc-editor.org/rfc/rfc6585#section-4)",
                "[Stripe: scaling your API with rate limiters](https://stripe.com/blog/rate-limiters)",
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="503-backpressure",
        category="http",
        title="Backpressure: the queue says 503",
        teaches="A bounded queue that is full refuses new work with 503: errors at the producer are the consumer's problem made visible.",
        parameters=(
            Parameter("capacity", "int", 20, "messages the queue holds", 5, 1000),
            Parameter(
                "processing_ms", "int", 300, "time the worker takes per order", 50, 2000, unit="ms"
            ),
        ),
        apply=lambda p: {
            "queue": {"queue_capacity": p["capacity"]},
            "worker": {"worker_processing_ms": p["processing_ms"]},
        },
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS, *QUEUE, QUEUE_REFUSED),
        signature=signature(
            "the queue is full, refuses orders with 503, and orders fail",
            25,
            above("queue.depth", 10),
            above("orders.errors_rps", 0.5),
        ),
        mitigations=(
            answered_by(
                "more-consumers",
                "more consumers drain the queue: it has room again and orders succeed",
                30,
                below("orders.errors_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="The fulfilment worker is slow and the queue between orders and the worker holds only a few messages. Once it is full the queue answers 503 to every new order, orders passes the failure on, and users see errors, although orders and inventory are healthy.",
            why="A bounded queue is backpressure: when the consumer cannot keep up, the producer is told at once instead of the queue growing until memory or latency gives out. The 503s are the system working as designed; the cause is the consumer's throughput, which is below the arrival rate.",
            what_to_look_at="`queue.depth` pinned at the capacity, `orders.errors_rps` up, and `worker.processed_rps` flat at what one slow consumer can do. The errors appear at orders, but the queue's depth and the worker's rate say where the bottleneck is.",
            how_systems_answer="Match consumer throughput to the arrival rate (more consumers, faster processing, batching), keep queues bounded so overload is visible, and have producers react to backpressure: retry later with backoff, shed optional work, or tell the user the order is accepted for later processing.",
            further_reading=(
                "[Avoiding insurmountable queue backlogs (Amazon Builders' Library)](https://aws.amazon.com/builders-library/avoiding-insurmountable-queue-backlogs/)",
                "[Reactive Streams: backpressure](https://www.reactive-streams.org/)",
                "[Little's law](https://en.wikipedia.org/wiki/Little%27s_law)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="malformed-response",
        category="http",
        title="200 OK, and unusable",
        teaches="A dependency that answers 200 with a body in the wrong shape looks healthy on its own dashboard; the errors appear at the caller, as crashes, unless the caller checks what it got and treats a bad body as a failure.",
        parameters=(
            Parameter(
                "malformed_ratio",
                "float",
                0.4,
                "share of inventory's reservations answered in a shape orders does not know",
                0.01,
                1.0,
            ),
        ),
        apply=lambda p: {"inventory": {"malformed_ratio": p["malformed_ratio"]}},
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            MetricSpec(
                "sdlab_injected_faults_total",
                "counter",
                "Faults injected, by kind.",
                ("service", "kind"),
            ),
        ),
        signature=signature(
            "orders fails with 500s while inventory, answering 200, reports no errors",
            20,
            above("orders.error_ratio", 0.15),
            below("inventory.error_ratio", 0.01),
        ),
        mitigations=(
            answered_by(
                "validate-responses",
                "orders checks the body, counts a bad one as a failed call and retries it: most orders go through",
                30,
                below("orders.error_ratio", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="A share of inventory's answers to reservations come back 200 OK with a body in another shape: the stock is reserved, but the field orders reads is not there (as when a new version of a service renames a field, or a proxy answers with its own page). Orders reads the missing field, fails with an internal error and answers 500; the gateway retries, reserving the stock again. Inventory's own metrics show nothing but successes.",
            why="Status codes describe what the server thinks happened, not whether the caller can use the answer. A server's RED metrics count its 200s as successes; a body that does not decode, or decodes to the wrong shape, only fails where it is read. A caller that trusts the body blindly turns the callee's quiet bug into its own crash, far from the cause, and its retries of a non-idempotent call repeat the side effect.",
            what_to_look_at="`orders.error_ratio` up while `inventory.error_ratio` stays at 0: the errors are at the caller. Orders' logs say `KeyError: 'stock'`. `sdlab_injected_faults_total` with kind malformed counts inventory's odd answers. With validation on, `sdlab_client_calls_total` shows them at orders with outcome malformed, as failed calls rather than crashes.",
            how_systems_answer="Validate responses at the boundary (a schema, typed decoding) and treat a body that fails as a failed call: count it, retry it if the call is idempotent, let a circuit breaker see it. Version APIs and evolve them compatibly (add fields, never rename), test consumers against providers with contract tests, and canary new versions while watching their callers' errors, not only their own.",
            further_reading=(
                "[Pact: consumer-driven contract testing](https://docs.pact.io/)",
                "[Google API design guide: compatibility](https://cloud.google.com/apis/design/compatibility)",
                "[Martin Fowler: Tolerant Reader](https://martinfowler.com/bliki/TolerantReader.html)",
            ),
        ),
        load_rps=10,
        load_mix={"read_ratio": 0.5},
    ),
]
