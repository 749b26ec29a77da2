from sandbox.catalog._build import (
    CLIENT_METRICS,
    QUEUE,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

RESERVATIONS = MetricSpec(
    "sdlab_reservations_total",
    "counter",
    "Reservations asked for, by outcome (ok, replayed, no-stock, conflict).",
    ("service", "outcome"),
)
VERSION_CONFLICTS = MetricSpec(
    "sdlab_version_conflicts_total",
    "counter",
    "Writes refused because the row's version changed since it was read.",
    ("service",),
)


def flash_sale(*, hot_order_ratio: float, check_ms: int) -> tuple[Parameter, ...]:
    """Most orders on one product, each pausing between its read and its write."""
    return (
        Parameter(
            "hot_order_ratio",
            "float",
            hot_order_ratio,
            "share of orders for one product (a flash sale)",
            0.3,
            1.0,
        ),
        Parameter(
            "check_ms",
            "int",
            check_ms,
            "time between reading the stock and writing it back (a price check)",
            10,
            300,
            unit="ms",
        ),
    )


SCENARIOS = [
    Scenario(
        slug="double-write",
        category="concurrency",
        title="An order taken twice",
        teaches="A retry of a request that did succeed repeats its side effect: without an "
        "idempotency key, one click becomes two orders.",
        parameters=(
            Parameter(
                "slow_ratio",
                "float",
                0.3,
                "share of hand-offs to the queue that stall after the order is saved",
                0.1,
                0.8,
            ),
            Parameter(
                "stall_ms", "int", 600, "how long a stalled hand-off takes", 400, 3000, unit="ms"
            ),
        ),
        apply=lambda p: {
            "queue": {"slow_ratio": p["slow_ratio"], "slow_ms": p["stall_ms"]},
            "gateway": {"client_timeout_ms": 300},
        },
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            RESERVATIONS,
            MetricSpec(
                "sdlab_duplicate_orders_total",
                "counter",
                "Reservations written for a client request id that already had one.",
                ("service",),
            ),
        ),
        signature=signature(
            "the gateway's retries of orders that did go through write the same order again",
            20,
            above("gateway.client_retries_rps", 0.3),
            above("inventory.duplicate_orders_rps", 0.3),
        ),
        mitigations=(
            answered_by(
                "idempotency-keys",
                "a retry finds its request id and gets the first order back: no more duplicates",
                20,
                below("inventory.duplicate_orders_rps", 0.05),
                above("inventory.idempotent_replays_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="Some of the time, handing a new order to the fulfilment queue stalls. The order is already saved (its reservation row is committed and the stock taken), but the gateway stops waiting after 300 ms and sends the same request again. The retry is a new order: the same client request id now has two reservations, and two parcels will ship.",
            why="A timeout tells the caller nothing about what happened on the other side: the request may never have arrived, or it may have done all its work and only the answer was late. Retrying is safe only when doing the thing twice has the same effect as doing it once. Creating an order is not like that, so every retry of a request that in fact succeeded writes a duplicate.",
            what_to_look_at="`gateway.client_retries_rps`: the gateway retries orders that timed out. `inventory.duplicate_orders_rps` counts reservations written for a request id that already had one (a real count in the reservations table). Users mostly see success, which is what makes duplicates so easy to miss.",
            how_systems_answer="Idempotency keys: the client sends a unique key with each operation and reuses it on every retry; the server stores the key with the result in the same transaction as the write, and a request with a known key gets the stored result instead of a second write. Stripe's API, AWS's ClientToken and the IETF Idempotency-Key header all work this way. Unique constraints on a natural key (one order per cart) catch what keys miss.",
            further_reading=(
                "[Stripe: idempotent requests](https://docs.stripe.com/api/idempotent_requests)",
                "[Brandur Leach: Implementing Stripe-like idempotency keys in Postgres](https://brandur.org/idempotency-keys)",
                "[IETF draft: the Idempotency-Key HTTP header field](https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/)",
                "[AWS Builders' Library: making retries safe with idempotent APIs](https://aws.amazon.com/builders-library/making-retries-safe-with-idempotent-APIs/)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="lost-update",
        category="concurrency",
        title="Lost updates on a hot product",
        teaches="Two requests that read a value, compute, and write it back overwrite each "
        "other: units are sold but the stock never goes down for them.",
        parameters=flash_sale(hot_order_ratio=0.8, check_ms=80),
        apply=lambda p: {
            "inventory": {"stock_write": "read-modify-write", "stock_check_ms": p["check_ms"]},
            "loadgen": {"hot_order_ratio": p["hot_order_ratio"]},
        },
        metrics=(
            *REQUEST_METRICS,
            RESERVATIONS,
            MetricSpec(
                "sdlab_stock_lost_updates_total",
                "counter",
                "Units reserved that the stock never went down by (found by reconciliation).",
                ("service",),
            ),
            VERSION_CONFLICTS,
        ),
        signature=signature(
            "reconciliation finds units reserved that the stock never went down by",
            20,
            above("inventory.lost_updates_rps", 0.5),
        ),
        mitigations=(
            answered_by(
                "atomic-update",
                "the database subtracts in one statement: the stock matches the reservations",
                20,
                below("inventory.lost_updates_rps", 0.05),
            ),
            answered_by(
                "version-check",
                "a write whose row changed since its read is refused and retried: nothing is "
                "lost, and the collisions show as version conflicts",
                20,
                below("inventory.lost_updates_rps", 0.05),
                above("inventory.version_conflicts_rps", 0.3),
            ),
        ),
        explanation=Explanation(
            what_happens="A flash sale sends most orders to one product. Each reservation reads the product's stock, spends a few tens of milliseconds on a price check, then writes back the stock it read minus one. Two reservations that overlap both read the same number and both write the same result: two units are sold, the stock goes down by one. Reconciliation (stock against the reservation rows, read in one snapshot) finds the missing units.",
            why="A read-modify-write done in the application is three steps, and nothing stops another request from writing between the read and the write. The last writer wins and silently erases the other's change: a lost update. Each statement is correct and each transaction commits; the bug exists only in the interleaving, which is why it never shows in a test with one user and grows with traffic on the same row.",
            what_to_look_at="`inventory.lost_updates_rps`: units reserved per second that the stock never went down by, as the reconciliation counts them. Nothing errors and latency barely moves; the only trace is the drift between two numbers that should agree (the warning log `stock drift` names the product).",
            how_systems_answer="Let the database do the arithmetic in one statement (`UPDATE ... SET stock = stock - 1 WHERE stock >= 1`), which it applies under its own row lock; or lock the row for the read (`SELECT ... FOR UPDATE` in PostgreSQL); or use optimistic concurrency: keep a version column, write `WHERE version = :read_version`, and retry when no row matched. Stronger isolation (SERIALIZABLE) turns the race into an error to retry. Reconciliation jobs catch what slips through.",
            further_reading=(
                "[Martin Kleppmann, *Designing Data-Intensive Applications*, ch. 7: preventing lost updates](https://dataintensive.net/)",
                "[PostgreSQL: explicit locking (SELECT FOR UPDATE)](https://www.postgresql.org/docs/current/explicit-locking.html)",
                "[Martin Fowler: Optimistic Offline Lock](https://martinfowler.com/eaaCatalog/optimisticOfflineLock.html)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="optimistic-locking-collision",
        category="concurrency",
        title="Version conflicts on a hot row",
        teaches="Optimistic locking is cheap while writers rarely meet; on a hot row most "
        "writes lose the race, retry, and lose again.",
        parameters=flash_sale(hot_order_ratio=0.9, check_ms=60),
        apply=lambda p: {
            "inventory": {"stock_write": "version-check", "stock_check_ms": p["check_ms"]},
            "loadgen": {"hot_order_ratio": p["hot_order_ratio"]},
        },
        metrics=(
            *REQUEST_METRICS,
            RESERVATIONS,
            VERSION_CONFLICTS,
        ),
        signature=signature(
            "most reservations of the hot product lose a version race and retry",
            20,
            above("inventory.version_conflicts_rps", 2.0),
            above("inventory.conflicts_per_reservation", 0.3),
        ),
        mitigations=(
            answered_by(
                "single-writer",
                "writes to one product take turns: no write is overtaken, conflicts vanish",
                20,
                below("inventory.conflicts_per_reservation", 0.05),
            ),
        ),
        explanation=Explanation(
            what_happens="Reservations check a version: each reads the product's stock and version, spends a few tens of milliseconds on a price check, and writes `WHERE version = :read_version` (the version it read). Nothing is lost, but in a flash sale most orders hit one row, so while one reservation checks prices another commits, and the write matches no row. It reads again, checks again, and often loses again; after eight tries the order is refused.",
            why="Optimistic concurrency bets that conflicts are rare: it takes no lock and pays only when two writers meet, by redoing the work. The cost of a conflict grows with the time between read and write, and the chance of one grows with the number of writers on the same row. On a hot row the bet is lost: retries add load exactly where it is already concentrated, and the work done by every losing attempt is wasted.",
            what_to_look_at='`inventory.version_conflicts_rps` and `inventory.conflicts_per_reservation` (conflicts per reservation asked for): they climb with the share of orders on the hot product and with the read-to-write time. Orders\' latency grows with the retries, and some orders are refused (`sdlab_reservations_total{outcome="conflict"}`).',
            how_systems_answer="Reduce contention rather than retry harder: route every write for one entity through a single writer (a per-key queue or actor, partitioning by key in Kafka), shorten the time between read and write, or use a pessimistic lock (`SELECT ... FOR UPDATE`) on rows known to be hot. Split a hot counter into several rows that are summed on read. Where retries stay, back off with jitter and cap them.",
            further_reading=(
                "[Martin Fowler: Optimistic Offline Lock](https://martinfowler.com/eaaCatalog/optimisticOfflineLock.html)",
                "[Martin Thompson: the Single Writer Principle](https://mechanical-sympathy.blogspot.com/2011/09/single-writer-principle.html)",
                "[Google Cloud: sharded counters](https://cloud.google.com/firestore/docs/solutions/counters)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="phantom-read",
        category="concurrency",
        title="A report that does not add up",
        teaches="Two reads outside one transaction see two different databases: orders that "
        "land in between appear in the second read and the report contradicts itself.",
        parameters=(
            Parameter(
                "every_ms", "int", 100, "how often the sales report is read", 100, 5000, unit="ms"
            ),
            Parameter(
                "render_ms",
                "int",
                300,
                "time between the report's total and its lines",
                20,
                1000,
                unit="ms",
            ),
        ),
        apply=lambda p: {
            "inventory": {"report_every_ms": p["every_ms"], "report_render_ms": p["render_ms"]}
        },
        metrics=(
            *REQUEST_METRICS,
            RESERVATIONS,
            MetricSpec(
                "sdlab_reports_total",
                "counter",
                "Sales reports read, by whether their total matched their lines.",
                ("service", "outcome"),
            ),
        ),
        signature=signature(
            "most sales reports count a different number of orders than they list",
            15,
            above("inventory.inconsistent_reports_ratio", 0.4),
        ),
        mitigations=(
            answered_by(
                "snapshot-reads",
                "both reads in one read transaction see one snapshot: every report adds up",
                15,
                below("inventory.inconsistent_reports_ratio", 0.05),
            ),
        ),
        explanation=Explanation(
            what_happens="A sales dashboard reads a report of the last minute's orders several times a second: first the total (`SELECT count(*)`), then, while it renders, the lines (`SELECT ... FROM reservations`). Orders keep arriving. Each read is its own statement, so the lines include orders committed after the total was taken: the report says 540 orders and lists 542.",
            why="Without a transaction around them, two statements are two separate views of the database, each of the moment it ran. Rows inserted in between are phantoms: they match the second read's condition but did not exist for the first. This is what READ COMMITTED allows in most databases; SQLite in autocommit mode behaves the same. Every single number is correct, and together they are inconsistent.",
            what_to_look_at="`inventory.inconsistent_reports_ratio`: the share of reports whose total differs from the number of lines they list. It follows the order rate and the time between the two reads. Nothing fails and nothing is slow; the harm is in decisions made on numbers that never existed together.",
            how_systems_answer="Read everything a report needs inside one transaction that sees one snapshot: SQLite in WAL mode gives each read transaction a snapshot (`BEGIN` ... `COMMIT`), PostgreSQL's REPEATABLE READ gives one snapshot per transaction, and SERIALIZABLE also prevents phantoms for writers. Or compute the total from the lines in one query. Long snapshots hold back cleanup (vacuum, WAL checkpoints), so keep them short.",
            further_reading=(
                "[SQLite: isolation in SQLite (WAL snapshots)](https://www.sqlite.org/isolation.html)",
                "[PostgreSQL: transaction isolation](https://www.postgresql.org/docs/current/transaction-iso.html)",
                "[Hal Berenson et al.: A Critique of ANSI SQL Isolation Levels](https://www.microsoft.com/en-us/research/publication/a-critique-of-ansi-sql-isolation-levels/)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="thundering-herd",
        category="concurrency",
        title="A thundering herd of consumers",
        teaches="Waking every waiter for one event sends them all at once after a single "
        "prize: one wins, the rest wasted a round trip and go back to sleep.",
        parameters=(
            Parameter("consumers", "int", 32, "fulfilment consumers waiting on the queue", 8, 32),
        ),
        apply=lambda p: {
            "worker": {"worker_concurrency": p["consumers"], "worker_wait_notify": True},
            "queue": {"queue_wake": "all"},
        },
        metrics=(
            *REQUEST_METRICS,
            *QUEUE,
            MetricSpec(
                "sdlab_queue_wakeups_total",
                "counter",
                "Sleeping consumers woken by an arrival.",
                ("service",),
            ),
            MetricSpec(
                "sdlab_queue_empty_claims_total",
                "counter",
                "Claims that found nothing: a wake-up wasted.",
                ("service",),
            ),
        ),
        signature=signature(
            "every order wakes every consumer: the queue's request rate jumps many times over",
            20,
            above("queue.wakeups_per_message", 8),
            above("queue.rps", ratio=5.0),
        ),
        mitigations=(
            answered_by(
                "wake-one",
                "each arrival wakes one consumer: one wake-up per message, no wasted claims",
                20,
                below("queue.wakeups_per_message", 2),
                below("queue.empty_claims_rps", ratio=0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="The worker runs many consumers that sleep until the queue tells them an order has arrived, then claim it. The queue wakes all of them for every order (a notify_all). They all rush to claim the same message: one gets it, every other one finds the queue empty and goes back to sleep. Each order now costs the queue dozens of requests, in a burst.",
            why="Waking every waiter for an event only one of them can handle turns one event into N contenders. The work of the herd (a wake-up, a request, a claim that fails, a new wait) is pure overhead, it arrives all at the same instant, and it grows with the number of waiters, so adding consumers to go faster makes every message more expensive.",
            what_to_look_at="`queue.wakeups_per_message`: consumers woken per message handed out (about the number of consumers). `queue.rps` jumps to many times its normal rate and `queue.empty_claims_rps` counts the claims that came back empty; `queue.cpu_ratio` rises with them, though there is no more work than before. (The queue's latency percentiles mean little here: they include the consumers' long waits.)",
            how_systems_answer="Wake one waiter per event: `notify()` instead of `notify_all()`, `EPOLLEXCLUSIVE` or `SO_REUSEPORT` for accepting connections (nginx's accept_mutex), a queue that hands each message to one blocked consumer (Redis BLPOP, SQS long polling). ZooKeeper's lock recipe makes each waiter watch only its predecessor. Where many clients must come back after an outage, spread them with jitter.",
            further_reading=(
                "[Wikipedia: thundering herd problem](https://en.wikipedia.org/wiki/Thundering_herd_problem)",
                "[ZooKeeper recipes: locks without the herd effect](https://zookeeper.apache.org/doc/current/recipes.html#sc_recipes_Locks)",
                "[LWN: EPOLLEXCLUSIVE, avoiding the thundering herd](https://lwn.net/Articles/667087/)",
            ),
        ),
        load_rps=15,
    ),
]
