"""Database scenarios about locks: transactions that wait for each other."""

from sandbox.catalog._build import (
    CLIENT_METRICS,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

LOCK_METRICS = (
    MetricSpec(
        "sdlab_db_lock_wait_seconds_total",
        "counter",
        "Time writes waited for a database lock, by transaction.",
        ("service", "transaction"),
    ),
    MetricSpec(
        "sdlab_db_lock_waits_total",
        "counter",
        "Writes that asked for a database lock, by transaction.",
        ("service", "transaction"),
    ),
)

SCENARIOS = [
    Scenario(
        slug="deadlock",
        category="database",
        title="A deadlock",
        teaches="Two kinds of transaction take the same two locks in opposite order: each "
        "holds one and waits for the other, until one gives up with 'database is locked'.",
        parameters=(
            Parameter(
                "gap_ms",
                "int",
                30,
                "work each transaction does between its two writes",
                5,
                200,
                unit="ms",
            ),
            Parameter(
                "lock_timeout_ms",
                "int",
                300,
                "how long a write waits for a lock before giving up",
                50,
                2000,
                unit="ms",
            ),
        ),
        apply=lambda p: {
            "inventory": {
                "stock_ledger": True,
                "ledger_gap_ms": p["gap_ms"],
                "ledger_lock_timeout_ms": p["lock_timeout_ms"],
            }
        },
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            *LOCK_METRICS,
            MetricSpec(
                "sdlab_db_deadlocks_total",
                "counter",
                "Transactions rolled back after their lock wait ran out ('database is "
                "locked'), by transaction.",
                ("service", "transaction"),
            ),
            MetricSpec(
                "sdlab_db_transaction_retries_total",
                "counter",
                "Transactions run again after a deadlock, by transaction.",
                ("service", "transaction"),
            ),
        ),
        signature=signature(
            "reserves and shipments deadlock: transactions roll back with 'database is locked' "
            "and shipments fail",
            20,
            above("inventory.deadlocks_rps", 0.5),
            above("worker.failed_rps", 0.2),
        ),
        mitigations=(
            answered_by(
                "lock-ordering",
                "both transactions lock products, then the ledger, at the start: no cycle, no "
                "deadlock, and shipments go through",
                20,
                below("inventory.deadlocks_rps", 0.2),
                below("worker.failed_rps", 0.1),
            ),
        ),
        explanation=Explanation(
            what_happens="Inventory now records every stock movement in a ledger, a second "
            "SQLite database with its own write lock. A reservation updates the product, then "
            "writes the ledger; a shipment writes the ledger, then updates products. When one "
            "of each runs at the same time, the reservation holds products and waits for the "
            "ledger while the shipment holds the ledger and waits for products. Neither can go "
            "on. SQLite breaks the cycle with `database is locked`: at once where it sees that "
            "waiting cannot help (a transaction whose snapshot went stale while it waited), "
            "otherwise when the lock timeout runs out. The loser rolls back; its caller sees "
            "an error.",
            why="A deadlock needs two resources taken in opposite order by two transactions "
            "that each hold one while asking for the other. Each transaction is correct on its "
            "own, and under light load they rarely overlap; the more concurrent they are and "
            "the longer they hold their first lock, the more often they meet. SQLite has no "
            "deadlock detector across two files: the lock timeout breaks the cycle, after "
            "wasting the whole wait (PostgreSQL and InnoDB detect the cycle and abort one "
            "victim, with error 40P01 or 1213).",
            what_to_look_at="`inventory.deadlocks_rps` (transactions rolled back after their "
            "lock wait ran out) and `inventory.db_lock_wait_ms` (how long writes wait for a "
            "lock) jump; orders fail or are retried by their callers "
            "(`orders.client_retries_rps`), and the worker's shipments fail too. The logs of "
            "both sides show the same error at the same moment.",
            how_systems_answer="Take locks in one global order (always products, then the "
            "ledger; rows by ascending id), or take everything at once at the start "
            "(`BEGIN IMMEDIATE`, `SELECT ... FOR UPDATE` of all rows). Keep transactions short "
            "so they overlap less. Treat a deadlock as a retryable error: roll back and run the "
            "transaction again with a short backoff, since the other side has gone through.",
            further_reading=(
                "[PostgreSQL: deadlocks](https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-DEADLOCKS)",
                "[MySQL: how to minimize and handle deadlocks](https://dev.mysql.com/doc/refman/8.0/en/innodb-deadlocks-handling.html)",
                "[SQLite: file locking and concurrency](https://www.sqlite.org/lockingv3.html)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="row-lock-contention",
        category="database",
        title="A hot row",
        teaches="Every order updates one shared counter row and keeps its transaction open "
        "while it works: writers queue on that lock, lock waits climb and order throughput "
        "stops growing.",
        parameters=(
            Parameter(
                "txn_ms",
                "int",
                80,
                "work each order does inside its transaction, holding the row",
                10,
                300,
                unit="ms",
            ),
        ),
        apply=lambda p: {"inventory": {"hot_row_txn_ms": p["txn_ms"]}},
        metrics=(*REQUEST_METRICS, *LOCK_METRICS),
        signature=signature(
            "writes wait for the hot row's lock: lock waits climb and orders slow down",
            20,
            above("inventory.db_lock_wait_ms", 30),
            above("orders.p95_ms", ratio=2.0),
        ),
        mitigations=(
            answered_by(
                "short-transactions",
                "the work is done before the transaction, which now only writes: lock waits fall",
                20,
                below("inventory.db_lock_wait_ms", ratio=0.3),
            ),
        ),
        explanation=Explanation(
            what_happens="Every order now also increments the shop's order counter, one row "
            "that all orders share, and computes its loyalty points inside the same "
            "transaction, after the writes. The row stays locked until the transaction "
            "commits, so every other order waits for it: writers form a queue on one lock.",
            why="A lock is held until commit, not until the statement ends. A transaction "
            "that holds a hot row for `txn_ms` lets at most 1000/`txn_ms` writers through a "
            "second, whatever the hardware; beyond that, arrivals queue and each waits for all "
            "in front of it. SQLite locks the whole database for writing, which is what a hot "
            "row becomes in PostgreSQL or InnoDB: one lock every writer needs.",
            what_to_look_at="`inventory.db_lock_wait_ms` (time a write waits for its lock) "
            "climbs from almost nothing to tens or hundreds of milliseconds; orders' latency "
            "(`orders.p95_ms`) follows, and `inventory.reserved_rps` stops growing with "
            "traffic. CPU stays low: the time is spent waiting, not working.",
            how_systems_answer="Keep transactions short: do the work (calls, computation) "
            "before `BEGIN`, and only write inside. Take the hot lock last, just before "
            "commit. Spread a hot counter over several rows (a sharded counter) or aggregate "
            "it asynchronously. Set lock timeouts and alert on lock waits "
            "(`pg_stat_activity` wait events, `pg_locks`, InnoDB lock wait metrics).",
            further_reading=(
                "[PostgreSQL: explicit locking](https://www.postgresql.org/docs/current/explicit-locking.html)",
                "[Google Cloud: distributed (sharded) counters](https://firebase.google.com/docs/firestore/solutions/counters)",
                "[SQLite: file locking and concurrency](https://www.sqlite.org/lockingv3.html)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
]
