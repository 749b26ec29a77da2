"""Performance scenarios inside one process: a lock that serialises requests, and the
garbage collector's stop-the-world pauses."""

from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="lock-contention",
        category="performance",
        title="One lock for everyone",
        teaches="A process-wide lock held across I/O serialises every request that needs it: "
        "latency grows with concurrency while the CPU sits idle.",
        parameters=(
            Parameter(
                "hold_ms",
                "int",
                40,
                "I/O wait each stock read and reservation does while holding the lock",
                5,
                200,
                unit="ms",
            ),
        ),
        apply=lambda p: {"inventory": {"lock_hold_ms": p["hold_ms"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_lock_wait_seconds_total",
                "counter",
                "Time callers waited for an in-process lock.",
                ("service",),
            ),
            MetricSpec(
                "sdlab_lock_acquisitions_total",
                "counter",
                "Times an in-process lock was taken.",
                ("service",),
            ),
            MetricSpec(
                "sdlab_lock_waiters",
                "gauge",
                "Callers waiting for an in-process lock now.",
                ("service",),
            ),
        ),
        signature=signature(
            "requests queue for one lock: lock waits and inventory's latency climb while its "
            "CPU stays low",
            20,
            above("inventory.lock_wait_ms", 20),
            above("inventory.p95_ms", ratio=3.0),
            below("inventory.cpu_ratio", 0.5),
        ),
        mitigations=(
            answered_by(
                "lock-striping",
                "a lock per group of products: only requests for the same products wait",
                20,
                below("inventory.lock_wait_ms", ratio=0.2),
                below("inventory.p95_ms", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Inventory now reads each product's price rules under one lock for "
            "the whole process, and holds it while it waits for their I/O. Every stock read "
            "and every reservation, whatever the product, takes that lock in turn: one at a "
            "time, however many arrive together.",
            why="A lock turns concurrent work into a queue. Held for `hold_ms`, it lets at "
            "most 1000/`hold_ms` requests through a second; as arrivals approach that rate, "
            "each waits for everyone in front of it, and the wait grows much faster than the "
            "load. Because the holder is waiting on I/O, not computing, the CPU is idle: "
            "adding cores or instances of the same code in one process does not help.",
            what_to_look_at="`inventory.lock_wait_ms` (average wait for the lock) and "
            "`sdlab_lock_waiters` rise; `inventory.p95_ms` climbs several-fold while "
            "`inventory.cpu_ratio` stays low. Latency that grows with concurrency at low CPU "
            "is the mark of a serialising lock (or a pool of one).",
            how_systems_answer="Hold locks for as little as possible and never across I/O; "
            "lock finer (per key, or striped: a fixed set of locks chosen by a hash of the "
            "key, as Java's ConcurrentHashMap once did); use lock-free structures, immutable "
            "snapshots or per-worker copies. Measure lock wait time (contention profiling, "
            "Go's mutex profile, Java Flight Recorder's monitor events).",
            further_reading=(
                "[Java Concurrency in Practice: reducing lock contention (lock striping)](https://jcip.net/)",
                "[Go: the mutex and block profiles](https://go.dev/doc/diagnostics#profiling)",
                "[Python: asyncio synchronisation primitives](https://docs.python.org/3/library/asyncio-sync.html)",
            ),
        ),
        load_rps=30,
    ),
]
