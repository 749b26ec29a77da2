from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import MetricSpec, Parameter, Scenario

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
        load_rps=25,
    ),
    Scenario(
        slug="memory-leak",
        category="resources",
        title="A memory leak",
        teaches="A leak shows as memory that only climbs; recycling the process caps it until the fix.",
        parameters=(
            Parameter("leak_kb", "int", 64, "memory kept per gateway request", 1, 4096, unit="KiB"),
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
        signature=signature(
            "writes to the database fail once the disk is full",
            30,
            above("inventory.errors_rps", 0.5),
            above("worker.failed_rps", 0.5),
        ),
        mitigations=(
            answered_by(
                "disk-cleanup",
                "the file is rotated away and writes succeed again",
                20,
                below("inventory.errors_rps", 0.2),
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.3},
    ),
]
