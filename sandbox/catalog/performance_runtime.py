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

SCENARIOS += [
    Scenario(
        slug="gc-pause",
        category="performance",
        title="Garbage collector pauses",
        teaches="A large heap of long-lived objects and a churn of cyclic garbage make "
        "Python's cyclic collector stop the whole process for long full collections: the "
        "tail latency spikes while the median stays.",
        parameters=(
            Parameter(
                "heap_objects",
                "int",
                400_000,
                "long-lived container objects the process keeps (each full collection walks them)",
                50_000,
                1_000_000,
            ),
            Parameter(
                "churn_objects",
                "int",
                3000,
                "cyclic objects each request builds and keeps for a few requests",
                100,
                20_000,
            ),
        ),
        apply=lambda p: {
            "inventory": {
                "gc_heap_objects": p["heap_objects"],
                "gc_churn_objects": p["churn_objects"],
            }
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_gc_pause_seconds",
                "histogram",
                "Stop-the-world pauses of the cyclic garbage collector, by generation.",
                ("service", "generation"),
            ),
            MetricSpec(
                "sdlab_gc_tracked_objects",
                "gauge",
                "Objects the garbage collector tracks.",
                ("service",),
            ),
        ),
        signature=signature(
            "full collections stop inventory for tens of milliseconds: its p99 jumps",
            20,
            # A pause's length is the machine's speed: 36-52 ms on the two-core CI VM,
            # 10-22 ms stopped per second; the bounds leave room for a faster one.
            above("inventory.gc_full_pause_ms", 25),
            above("inventory.gc_pause_ms_per_s", 8),
            above("inventory.p99_ms", 30),
        ),
        mitigations=(
            answered_by(
                "break-cycles-and-freeze",
                "no cyclic garbage and a frozen heap: collections are short, time paused and "
                "the p99 fall",
                30,
                below("inventory.gc_pause_ms_per_s", ratio=0.4),
                below("inventory.p99_ms", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Inventory now keeps a large in-process structure of objects that "
            "point at each other (a cache built once) and builds a tree of cyclic objects for "
            "every request, kept for the next few requests. Python's cyclic garbage collector "
            "runs a full collection every few seconds, and each one walks every tracked object "
            "in the process while nothing else runs.",
            why="CPython frees most objects by reference counting, but objects in a cycle "
            "need the cyclic collector. It is generational: young collections are cheap, but "
            "once enough objects have survived into the oldest generation it collects that "
            "too, and a full collection's cost grows with everything the process keeps, "
            "garbage or not. The process is stopped meanwhile: requests that arrive wait, "
            "so a few requests pay the whole pause and the tail moves while the median "
            "does not.",
            what_to_look_at="`inventory.gc_full_pause_ms` (average pause of a full "
            "collection, from `gc.callbacks`) and `sdlab_gc_pause_seconds` by generation; "
            "`inventory.p99_ms` jumps while `inventory.p50_ms` barely moves; "
            "`inventory.gc_pause_ms_per_s` is how much of each second the process spent "
            "stopped. Latency spikes that line up with GC pauses, at no change in traffic, "
            "point at the collector.",
            how_systems_answer="Allocate fewer cyclic objects on hot paths (break cycles, "
            "use weak references, plain tuples); `gc.freeze()` after start-up moves the "
            "long-lived heap out of the collector's sight (Instagram does it before forking "
            "workers); raise `gc.set_threshold` or collect at quiet moments. JVMs answer "
            "with concurrent, low-pause collectors (G1, ZGC).",
            further_reading=(
                "[Python: the gc module (freeze, callbacks, thresholds)](https://docs.python.org/3/library/gc.html)",
                "[Instagram Engineering: dismissing Python garbage collection](https://instagram-engineering.com/dismissing-python-garbage-collection-at-instagram-4dca40b29172)",
                "[CPython developer guide: garbage collector design](https://devguide.python.org/internals/garbage-collector/)",
            ),
        ),
        load_rps=20,
    ),
]
