from sandbox.catalog._build import (
    CLIENT_METRICS,
    HOP,
    IN_FLIGHT,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

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
        explanation=Explanation(
            what_happens="Inventory adds a fixed delay to every request. Every call that reaches it waits that much longer, and so does every caller up the chain: the gateway on a cache miss, orders on every reservation, users on both.",
            why="Latency along a chain of synchronous calls adds up: a caller can never be faster than the slowest thing it waits for. What the cache answers never reaches inventory, so the delay users see depends on the hit ratio as much as on the delay itself.",
            what_to_look_at="`inventory.p50_ms` rises by the delay: the cause moves by the full amount. The gateway and users rise too, but only as much as they wait for inventory. Compare each service's p50 before and after to find which one moved first and most.",
            how_systems_answer="Keep slow dependencies off the hot path: cache what can be cached (longer TTLs, stale-while-revalidate), call in parallel rather than in sequence, set timeouts from the latency budget of the whole request, and measure latency per dependency so the slow one is visible.",
            further_reading=(
                "[Google SRE book: Monitoring distributed systems (latency)](https://sre.google/sre-book/monitoring-distributed-systems/)",
                "[Caching challenges and strategies (Amazon Builders' Library)](https://aws.amazon.com/builders-library/caching-challenges-and-strategies/)",
                "Jeffrey Dean and Luiz André Barroso, *The Tail at Scale*, Communications of the ACM, 2013",
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
        explanation=Explanation(
            what_happens="A small share of inventory's requests are much slower than the rest. The median barely moves; the 99th percentile jumps to the slow requests' time.",
            why="Averages and medians describe the typical request; the tail describes the worst ones, and users who make many requests meet the tail often. A page that needs ten backend calls waits for the slowest of them, so a 1 % tail per call becomes a ~10 % tail per page.",
            what_to_look_at="`inventory.p99_ms` against `inventory.p50_ms`: a wide gap is a long tail. Users' p99 follows inventory's. An average would hide it: read percentiles, and read them per dependency.",
            how_systems_answer="Set timeouts near the healthy p99 and retry the slow ones (the retry is likely fast); send a hedged second request after the p95 and take the first answer; find and fix the cause of the slow share (a lock, a garbage collector pause, a cold cache).",
            further_reading=(
                "Jeffrey Dean and Luiz André Barroso, *The Tail at Scale*, Communications of the ACM, 2013",
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
                "[Google SRE book: Service level objectives](https://sre.google/sre-book/service-level-objectives/)",
            ),
        ),
        load_rps=25,
    ),
    Scenario(
        slug="slow-dependency",
        category="latency",
        title="One slow dependency",
        teaches="One dependency on one route slows down: only the requests that wait for it get slow, and taking it off the critical path fixes them.",
        parameters=(
            Parameter(
                "delay_ms",
                "int",
                400,
                "time added to each call from orders to the queue",
                20,
                3000,
                unit="ms",
            ),
        ),
        # Each way of the hop carries half of the delay.
        apply=lambda p: {"hop:orders->queue": {"latency_ms": p["delay_ms"] / 2}},
        metrics=(
            *REQUEST_METRICS,
            HOP,
            MetricSpec(
                "sdlab_orders_handoffs_total",
                "counter",
                "Orders handed to the queue after the answer, by outcome.",
                ("service", "outcome"),
            ),
        ),
        signature=signature(
            "orders wait for the queue on every order while product reads stay fast",
            20,
            above("orders.p50_ms", 250),
            below("inventory.p50_ms", 100),
        ),
        mitigations=(
            answered_by(
                "async-handoff",
                "orders answer once stock is reserved; the queue gets the order in the background",
                30,
                below("orders.p50_ms", ratio=0.3),
            ),
        ),
        explanation=Explanation(
            what_happens="Every call from orders to the queue takes hundreds of milliseconds longer. Placing an order waits for that call, so orders slow down by the delay; reading a product never touches the queue and stays exactly as fast as before.",
            why="A request is as slow as the slowest call on its critical path. The queue is on the order path only, so the latency shows on one route and not the others: that asymmetry is the fingerprint of one slow dependency, as opposed to an overloaded service that slows everything.",
            what_to_look_at="`orders.p50_ms` rises by about the delay while `inventory.p50_ms` and the gateway's product reads do not move. Per-route and per-dependency latency (`sdlab_client_duration_seconds` by dependency) point at the queue; a trace of one order shows the long enqueue span.",
            how_systems_answer="Take work the user does not need to wait for off the critical path: answer once the order is safely reserved and hand it to the queue asynchronously, with an outbox table so a crash between answer and enqueue cannot lose it. Give each dependency a timeout from the route's latency budget, and watch latency per dependency so the slow one is named.",
            further_reading=(
                "[Microservices.io: transactional outbox](https://microservices.io/patterns/data/transactional-outbox.html)",
                "[Azure architecture: Queue-Based Load Leveling](https://learn.microsoft.com/en-us/azure/architecture/patterns/queue-based-load-leveling)",
                "[Google SRE book: Monitoring distributed systems](https://sre.google/sre-book/monitoring-distributed-systems/)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.6},
    ),
    Scenario(
        slug="tail-latency",
        category="latency",
        title="Fan-out makes the tail the norm",
        teaches="A request that waits for many calls waits for the slowest: a tail too rare to show in any one backend's p95 becomes a common page, and hedged requests cut it.",
        parameters=(
            Parameter("fanout", "int", 6, "calls to inventory each product page waits for", 2, 20),
            Parameter(
                "slow_ratio",
                "float",
                0.01,
                "share of inventory requests that are slow",
                0.001,
                0.05,
            ),
            Parameter("slow_ms", "int", 400, "how much slower they are", 50, 3000, unit="ms"),
        ),
        apply=lambda p: {
            "gateway": {"fanout": p["fanout"]},
            "inventory": {"slow_ratio": p["slow_ratio"], "slow_ms": p["slow_ms"]},
        },
        metrics=(
            *REQUEST_METRICS,
            INJECTED,
            MetricSpec(
                "sdlab_gateway_hedged_requests_total",
                "counter",
                "Second copies sent of stock reads slow to answer (hedged requests).",
                ("service",),
            ),
        ),
        signature=signature(
            "the gateway's p99 jumps by the slow time while its median and inventory's p95 stay low",
            20,
            above("gateway.p99_ms", 200, ratio=3),
            below("gateway.p50_ms", 100),
            below("inventory.p95_ms", 100),
        ),
        mitigations=(
            answered_by(
                "hedged-requests",
                "a stock read still unanswered after a short wait gets a second copy; the page waits for the faster",
                30,
                below("gateway.p99_ms", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Each product page now also shows the stock of several related products, fetched from inventory at the same time, and one inventory request in a hundred is slow. Inventory's own p95 does not move; the page's p99 jumps to the slow time, and its p95 follows as the fan-out grows.",
            why="A request that fans out finishes with its slowest call. If each call is slow with probability p, a page of n calls is slow with probability 1-(1-p)^n: six calls turn a 1 % tail into nearly 6 %. The larger the fan-out, the more a backend's rare tail becomes the page's typical experience, which is why large services care about their backends' p99.9.",
            what_to_look_at="`gateway.p99_ms` against `gateway.p50_ms`: the median is unchanged, the tail jumps by the slow time. `inventory.p95_ms` stays low: no single backend call looks bad. Raise `fanout` and watch the gateway's p95 join its p99.",
            how_systems_answer="Hedged requests: send a second copy of a call still unanswered after about the backend's p95 and take the first answer, which costs a few percent more load and removes most of the tail. Tied requests, timeouts with retries, smaller fan-out (batching related lookups into one call), and reducing the tail at its source (pauses, queues, noisy neighbours).",
            further_reading=(
                "Jeffrey Dean and Luiz André Barroso, *The Tail at Scale*, Communications of the ACM, 2013",
                "[gRPC: request hedging](https://grpc.io/docs/guides/request-hedging/)",
                "[Envoy: request hedging](https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/http/http_routing#request-hedging)",
            ),
        ),
        load_rps=10,
    ),
    Scenario(
        slug="missing-timeout",
        category="latency",
        title="A call with no timeout",
        teaches="A client without a timeout turns a hung dependency into requests that never end: no errors and no slow requests in the metrics, only in-flight work piling up until something runs out.",
        parameters=(
            Parameter(
                "client_timeout_s",
                "int",
                3600,
                "timeout of the gateway's and orders' calls (an hour: as good as none)",
                5,
                3600,
                unit="s",
            ),
        ),
        apply=lambda p: {
            "hop:orders->inventory": {"timeout": True},
            "gateway": {"client_timeout_ms": p["client_timeout_s"] * 1000},
            "orders": {"client_timeout_ms": p["client_timeout_s"] * 1000},
        },
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS, HOP, IN_FLIGHT),
        signature=signature(
            "orders and the gateway pile up requests in flight while reporting no errors",
            20,
            above("orders.in_flight", 10),
            above("gateway.in_flight", 10),
            below("gateway.errors_rps", 0.1),
        ),
        mitigations=(
            answered_by(
                "timeouts",
                "calls give up after 150 ms: the hang becomes errors that show, and users hear back in time",
                30,
                above("gateway.errors_rps", 0.5),
                below("users.p95_ms", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="The connection from orders to inventory stops carrying data: requests go in, nothing comes back, nothing is closed. Orders' client and the gateway's have no timeout to speak of, so every order placed waits, and waits. Product reads go on normally. The services report no errors and no slow requests; users give up after their own timeout.",
            why="A request is counted, as a success or an error and with its latency, when it ends. One that never ends is never counted: error rates and latency percentiles stay clean while the number of requests in flight grows by the arrival rate every second. Each one holds memory, a connection, a pool slot or a thread, until one of those runs out and everything that needs it stops, including requests that never touch the hung dependency.",
            what_to_look_at="`orders.in_flight` and `gateway.in_flight` climbing steadily while `gateway.errors_rps` stays at 0 and `orders.p99_ms` shows nothing at all: the requests that would be slow have not finished. `users.error_ratio` rises: only the users, who have a timeout, notice. Once 32 orders hang, the gateway's connection pool to orders is empty: `orders.in_flight` stops at 32 and later orders wait at the gateway for a connection, with no timeout either.",
            how_systems_answer="Every remote call gets a timeout, including the connect and the read, sized from the caller's latency budget; many client libraries default to none (Python's requests, Java's HttpURLConnection). Alert on in-flight requests and on throughput falling, not only on errors and latency. Bulkheads keep one hung dependency from taking every thread or connection.",
            further_reading=(
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
                "[Requests: timeouts (nothing times out by default)](https://requests.readthedocs.io/en/latest/user/advanced/#timeouts)",
                "Michael T. Nygard, *Release It!*, 2nd edition, chapter 5: Timeouts",
            ),
        ),
        load_rps=10,
        load_mix={"read_ratio": 0.6},
    ),
]
