from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

PROCESS = (
    MetricSpec(
        "sdlab_process_cpu_seconds_total", "counter", "CPU time of the service.", ("service",)
    ),
    MetricSpec(
        "sdlab_process_resident_bytes", "gauge", "Resident memory of the service.", ("service",)
    ),
)

SCENARIOS = [
    Scenario(
        slug="cpu-spike",
        category="resources",
        title="A CPU-bound handler",
        teaches="CPU work in an event loop blocks every other request; shedding load brings latency back.",
        parameters=(
            Parameter(
                "cpu_ms", "int", 30, "CPU time spent per inventory request", 1, 200, unit="ms"
            ),
        ),
        apply=lambda p: {"inventory": {"cpu_burn_ms": p["cpu_ms"]}},
        metrics=(*REQUEST_METRICS, *PROCESS),
        signature=signature(
            "inventory's CPU use and latency climb together",
            15,
            above("inventory.cpu_ratio", 0.25),
            above("inventory.p95_ms", 40),
        ),
        mitigations=(
            answered_by(
                "rate-limit",
                "the edge refuses what inventory cannot burn through",
                30,
                above("gateway.rate_limited_rps", 1.0),
                below("inventory.cpu_ratio", ratio=0.8),
            ),
        ),
        explanation=Explanation(
            what_happens="Every inventory request does real CPU work before it answers. Inventory's CPU use climbs, and so does the latency of every request it serves, including cheap ones.",
            why="Inventory runs on one event loop: while one request computes, no other request on that loop makes progress. CPU-bound work therefore queues everything behind it; past the point where the work per second exceeds one core, the queue only grows.",
            what_to_look_at="`inventory.cpu_ratio` (share of a core used) and `inventory.p95_ms` rise together. When CPU nears 1.0 latency grows without bound: that is saturation, the S of the USE method.",
            how_systems_answer="Shed or limit load at the edge so the service is never asked for more than it can compute (rate limits, admission control); move CPU-heavy work off the request path or into a pool of processes; profile and make the hot path cheaper; scale out on CPU.",
            further_reading=(
                "[Brendan Gregg: the USE method](https://www.brendangregg.com/usemethod.html)",
                "[Python asyncio: running blocking code](https://docs.python.org/3/library/asyncio-dev.html)",
                "[Google SRE book: Handling overload](https://sre.google/sre-book/handling-overload/)",
            ),
        ),
        load_rps=25,
    ),
    Scenario(
        slug="memory-leak",
        category="resources",
        title="A memory leak",
        teaches="A leak shows as memory that only climbs; recycling the process caps it until the fix.",
        parameters=(
            Parameter(
                "leak_kb", "int", 128, "memory kept per gateway request", 1, 4096, unit="KiB"
            ),
        ),
        apply=lambda p: {"gateway": {"leak_kb_per_request": p["leak_kb"]}},
        metrics=(*REQUEST_METRICS, *PROCESS),
        signature=signature(
            "the gateway's resident memory climbs steadily",
            40,
            above("gateway.memory_mb", ratio=1.3),
        ),
        mitigations=(
            answered_by(
                "recycle-workers",
                "the gateway restarts every few hundred requests: memory falls back",
                60,
                below("gateway.memory_mb", ratio=0.8),
            ),
        ),
        explanation=Explanation(
            what_happens="The gateway keeps a little memory from every request and never frees it. Its resident memory climbs steadily with traffic until, left alone, the process hits its limit and is killed.",
            why="A leak is memory that stays reachable (a growing list, a cache without a bound, a listener never removed), so no garbage collector can take it back. Its slope is proportional to the work done, which is why leaks surface at peak hours or after a traffic increase.",
            what_to_look_at="`gateway.memory_mb` only climbs, in proportion to the gateway's request rate. Latency and errors stay flat until the very end, so only a saturation metric (memory) shows the leak early.",
            how_systems_answer="Bound every cache and buffer; find the leak with heap snapshots (tracemalloc in Python); until the fix ships, recycle workers after a number of requests (gunicorn's max_requests, uWSGI's max-requests) so no process lives long enough to reach the limit; alert on memory growth rate, not only on a threshold.",
            further_reading=(
                "[Python: tracemalloc](https://docs.python.org/3/library/tracemalloc.html)",
                "[Gunicorn: max_requests](https://docs.gunicorn.org/en/stable/settings.html#max-requests)",
                "[Brendan Gregg: the USE method](https://www.brendangregg.com/usemethod.html)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="disk-full",
        category="resources",
        title="The disk fills up",
        teaches="A runaway file fills the disk; reads still work, every write fails; rotation frees it.",
        parameters=(
            Parameter(
                "fill_mb_per_s", "float", 16.0, "data the runaway writer adds", 1, 64, unit="MiB/s"
            ),
        ),
        apply=lambda p: {"inventory": {"disk_fill_mb_per_s": p["fill_mb_per_s"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_worker_failed_total",
                "counter",
                "Orders whose fulfilment failed.",
                ("service",),
            ),
        ),
        # Every order writes rows (its reservation, then its shipment): once the disk is
        # full its orders fail. The worker fails only the orders already queued then, a
        # burst too short to be a signature.
        signature=signature(
            "writes to the database fail once the disk is full; reads still work",
            30,
            above("inventory.errors_rps", 0.5),
            above("orders.errors_rps", 0.5),
            above("users.read_success_ratio", 0.9),
        ),
        mitigations=(
            answered_by(
                "disk-cleanup",
                "the file is rotated away and writes succeed again",
                20,
                below("inventory.errors_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="A runaway writer fills the sandbox's disk. Once it is full, reads keep working but every write that needs new space fails: each order's reservation row cannot be written, so orders fail, and the orders already queued fail at the worker when their shipment row cannot be written.",
            why="Databases and logs need free space to grow. At zero free bytes SQLite answers SQLITE_FULL (PostgreSQL and others fail similarly), and nothing that writes can proceed, however healthy the rest of the system is. The failure is sudden even though the filling was gradual, and clients that retry the errors multiply the failing writes.",
            what_to_look_at="`inventory.errors_rps` and `orders.errors_rps` jump when the disk fills, far above the order rate (every layer retries); `users.read_success_ratio` stays high. The logs say why: `database or disk is full` on writes.",
            how_systems_answer="Rotate and cap logs and temporary files (logrotate, size-based retention), keep data on its own volume, alert on the time until the disk is full (not only the percentage), and reserve space for the database so a runaway log cannot take it.",
            further_reading=(
                "[logrotate(8)](https://man7.org/linux/man-pages/man8/logrotate.8.html)",
                "[The Twelve-Factor App: logs as event streams](https://12factor.net/logs)",
                "[SQLite result codes: SQLITE_FULL](https://www.sqlite.org/rescode.html#full)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.3},
    ),
]

THREADS = (
    MetricSpec("sdlab_threadpool_busy", "gauge", "Threads running work.", ("service",)),
    MetricSpec("sdlab_threadpool_queued", "gauge", "Work waiting for a thread.", ("service",)),
    MetricSpec("sdlab_threadpool_size", "gauge", "Threads the pool may run at once.", ("service",)),
)

# infra helpers' scenarios
SCENARIOS += [
    Scenario(
        slug="thread-pool-exhaustion",
        category="resources",
        title="The thread pool runs out",
        teaches="Blocking I/O holds a thread for its whole wait: a small pool fills, work queues "
        "for a thread and latency climbs while the CPU sits idle.",
        parameters=(
            Parameter("threads", "int", 2, "threads running inventory's queries", 1, 8),
            Parameter(
                "io_ms", "int", 150, "blocking I/O each query waits for", 20, 1000, unit="ms"
            ),
        ),
        # Callers give up at 1 s: a wait longer than that would only feed their retries.
        apply=lambda p: {
            "inventory": {
                "threadpool_size": p["threads"],
                "db_io_ms": p["io_ms"],
                "db_pool_timeout_ms": 200,
            }
        },
        metrics=(*REQUEST_METRICS, *THREADS, *PROCESS),
        signature=signature(
            "queries queue for a thread and inventory's latency climbs while its CPU stays low",
            20,
            above("inventory.threadpool_queued", 2),
            above("inventory.p95_ms", 300),
            below("inventory.cpu_ratio", 0.5),
        ),
        mitigations=(
            answered_by(
                "bigger-threadpool",
                "enough threads for the waits: nothing queues and latency falls back",
                30,
                below("inventory.threadpool_queued", 1),
                below("inventory.p95_ms", ratio=0.4),
            ),
        ),
        explanation=Explanation(
            what_happens="Inventory's queries run on a small pool of threads, and each now waits on slow blocking I/O (a slow disk, a remote file system). Every thread is busy waiting, queries queue for a thread, and inventory's latency climbs, while its CPU use stays low: nothing is computing.",
            why="A thread doing blocking I/O is held for the whole wait. By Little's law a pool of N threads whose work takes W seconds serves at most N / W queries per second (2 threads at 150 ms: about 13 per second); above that, work queues in front of the pool and every query waits for all those ahead of it. The bottleneck is the number of threads, not the CPU or the database.",
            what_to_look_at="`inventory.threadpool_queued` above zero with every thread busy (`sdlab_threadpool_busy` equal to `sdlab_threadpool_size`), `inventory.p95_ms` climbing, and `inventory.cpu_ratio` low. High latency with an idle CPU points at a wait: a pool, a lock, I/O.",
            how_systems_answer="Size pools for blocking work by concurrency (rate x wait time), not by cores; keep a separate pool (a bulkhead) for each kind of blocking work so one slow kind cannot take every thread; use non-blocking I/O where the platform allows; bound the queue in front of the pool and shed what does not fit, so the wait stays short.",
            further_reading=(
                "[Python: concurrent.futures.ThreadPoolExecutor](https://docs.python.org/3/library/concurrent.futures.html#threadpoolexecutor)",
                "[Little's law](https://en.wikipedia.org/wiki/Little%27s_law)",
                "[Brendan Gregg: the USE method](https://www.brendangregg.com/usemethod.html)",
            ),
        ),
        load_rps=20,
    ),
]

SCENARIOS += [
    Scenario(
        slug="file-descriptor-exhaustion",
        category="resources",
        title="Out of file descriptors",
        teaches="Files opened and never closed pile up until the process hits its limit on "
        "open files; then every open and accept fails with EMFILE.",
        parameters=(
            Parameter("fd_limit", "int", 128, "inventory's limit on open files", 64, 1024),
            Parameter("leak_per_query", "int", 1, "files each query opens and never closes", 1, 4),
        ),
        apply=lambda p: {
            "inventory": {"fd_limit": p["fd_limit"], "fd_leak_per_query": p["leak_per_query"]}
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec("sdlab_open_fds", "gauge", "File descriptors open.", ("service",)),
            MetricSpec(
                "sdlab_fd_limit",
                "gauge",
                "The process's limit on open files (RLIMIT_NOFILE).",
                ("service",),
            ),
            MetricSpec(
                "sdlab_fd_leaked_total", "counter", "Files opened and never closed.", ("service",)
            ),
            MetricSpec(
                "sdlab_fd_exhausted_total",
                "counter",
                "Opens refused with EMFILE: the limit on open files was reached.",
                ("service",),
            ),
        ),
        signature=signature(
            "inventory's open files climb to its limit, then its requests fail",
            30,
            above("inventory.open_fds", ratio=2.0),
            above("inventory.errors_rps", 1.0),
        ),
        mitigations=(
            answered_by(
                "close-files",
                "the fix closes every file after use: descriptors fall back and errors stop",
                20,
                below("inventory.open_fds", ratio=0.6),
                below("inventory.errors_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="Each inventory query appends a line to an audit log through a code path that opens the file and never closes it. Inventory's open file descriptors climb with its traffic until they reach the process's limit; from then on every query fails, and so would every new connection it tries to accept.",
            why='A process may hold only so many open files and sockets (RLIMIT_NOFILE, `ulimit -n`; often 1024 by default). A file object that stays referenced is never closed by the garbage collector, so each leaked one keeps its descriptor for ever. At the limit, `open()`, `accept()` and `socket()` fail with EMFILE ("Too many open files") whatever the cause, so the leak in one code path breaks all the others.',
            what_to_look_at="`inventory.open_fds` climbs in step with inventory's request rate and flattens at `sdlab_fd_limit`; `inventory.errors_rps` jumps at that moment, and the logs name the error: `[Errno 24] Too many open files`. Memory and CPU stay flat: only this saturation metric shows the leak before it bites.",
            how_systems_answer="Close what you open (`with` blocks, try-with-resources, `defer`), find leaks with `lsof -p` or `/proc/PID/fd`, alert on open descriptors as a share of the limit, set the limit deliberately (systemd `LimitNOFILE`, container ulimits), and recycle workers until the fix ships.",
            further_reading=(
                "[getrlimit(2): RLIMIT_NOFILE](https://man7.org/linux/man-pages/man2/getrlimit.2.html)",
                "[Python: the with statement](https://docs.python.org/3/reference/compound_stmts.html#the-with-statement)",
                "[lsof(8)](https://man7.org/linux/man-pages/man8/lsof.8.html)",
            ),
        ),
        load_rps=20,
    ),
]
