from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

CACHE = (
    MetricSpec(
        "sdlab_cache_hits", "gauge", "Cache lookups that found a live entry (total).", ("service",)
    ),
    MetricSpec(
        "sdlab_cache_misses",
        "gauge",
        "Cache lookups that found nothing live (total).",
        ("service",),
    ),
    MetricSpec("sdlab_clock_skew_seconds", "gauge", "Offset of the service's clock.", ("service",)),
)

SCENARIOS = [
    Scenario(
        slug="clock-skew",
        category="infrastructure",
        title="Clock skew",
        teaches="Machines disagree about the time: an expiry written by one clock and read by another "
        "is wrong by the skew.",
        parameters=(
            Parameter(
                "skew_s", "float", 30.0, "how far ahead the cache's clock runs", -300, 300, unit="s"
            ),
        ),
        apply=lambda p: {"cache": {"clock_skew_s": p["skew_s"]}},
        metrics=(*REQUEST_METRICS, *CACHE),
        signature=signature(
            "every cache entry is born expired: the hit ratio collapses and inventory takes the reads",
            20,
            below("cache.hit_ratio", 0.05),
            above("gateway.backend_fetches_rps", ratio=1.3),
        ),
        mitigations=(
            answered_by(
                "relative-ttl",
                "TTLs sent as durations are measured by one clock: hits return",
                30,
                above("cache.hit_ratio", 0.15),
            ),
        ),
        explanation=Explanation(
            what_happens="The cache's clock runs ahead of the gateway's. The gateway writes entries that expire at a time by its own clock; by the cache's clock that time has already passed, so every entry is born expired and every read goes to inventory.",
            why="Absolute timestamps written by one machine and compared by another are only right if both clocks agree. NTP keeps clocks close but not equal, and virtual machines, suspended laptops and misconfigured hosts drift by seconds or more. Expiries, leases, tokens and certificates all break this way.",
            what_to_look_at="`cache.hit_ratio` collapses to zero and `gateway.backend_fetches_rps` rises, while nothing about the cache's load or memory changed. Each service's clock offset is published as `sdlab_clock_skew_seconds`.",
            how_systems_answer="Send durations (a TTL in seconds) rather than absolute times across machines, so one clock measures them; keep clocks synchronised and alert on offset; give time comparisons a leeway (JWT libraries accept a few seconds of skew); for ordering, use logical clocks or bounded-uncertainty clocks rather than wall time.",
            further_reading=(
                "[Falsehoods programmers believe about time](https://infiniteundo.com/post/25326999628/falsehoods-programmers-believe-about-time)",
                "Leslie Lamport, *Time, Clocks, and the Ordering of Events in a Distributed System*, 1978",
                "[Chrony: NTP implementation](https://chrony-project.org/)",
            ),
        ),
        load_rps=25,
    ),
    Scenario(
        slug="resource-starvation",
        category="infrastructure",
        title="A noisy neighbour inside",
        teaches="Batch work that eats the sandbox's CPU quota starves request handling next to it.",
        parameters=(
            Parameter("cpu_share", "float", 1.0, "share of a core the batch loop wants", 0.1, 1.0),
        ),
        # Two batch processes (fulfilment and the queue's own housekeeping) share the quota.
        apply=lambda p: {
            "worker": {"background_cpu_ratio": p["cpu_share"]},
            "queue": {"background_cpu_ratio": p["cpu_share"]},
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec("sdlab_process_cpu_seconds_total", "counter", "CPU time.", ("service",)),
        ),
        signature=signature(
            "the batch processes take the CPU and the gateway's latency climbs",
            20,
            above("worker.cpu_ratio", 0.2),
            above("gateway.p95_ms", ratio=2.0),
        ),
        mitigations=(
            answered_by(
                "deprioritise-batch",
                "with a small budget of its own the batch leaves the CPU to requests",
                30,
                below("gateway.p95_ms", ratio=0.6),
            ),
        ),
        explanation=Explanation(
            what_happens="Batch processes inside the sandbox (the fulfilment worker and the queue's housekeeping) burn all the CPU they can get. The sandbox has a CPU quota, and request handling next to them gets what is left: the gateway's latency climbs.",
            why="Under a CPU quota (a cgroup, a container limit) processes compete for the same budget. A busy batch loop at normal priority takes its fair share and more, and latency-sensitive work waits for the scheduler. Nothing is broken; the request path is simply starved.",
            what_to_look_at="`worker.cpu_ratio` high while `gateway.p95_ms` climbs, though the gateway's own work per request did not change. Latency that rises with a neighbour's CPU, not with your own load, is starvation.",
            how_systems_answer="Give batch work its own budget and the lowest priority (nice, a separate cgroup or CPU shares, a separate node pool), schedule it off-peak, and keep request-serving and batch workloads on separate machines or pods where latency matters.",
            further_reading=(
                "[Linux: CFS bandwidth control](https://www.kernel.org/doc/html/latest/scheduler/sched-bwc.html)",
                "[Kubernetes: resource management for pods and containers](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/)",
                "[Brendan Gregg: the USE method](https://www.brendangregg.com/usemethod.html)",
            ),
        ),
        load_rps=20,
        extra_requirements=("cpu-limit",),
    ),
]

# infra helpers' scenarios
SCENARIOS += [
    Scenario(
        slug="instance-crash-loop",
        category="infrastructure",
        title="A crash loop",
        teaches="A bad config kills a service after a few requests; its supervisor restarts it "
        "with growing backoff, and the service is down more than it is up.",
        parameters=(
            Parameter(
                "crash_after", "int", 10, "requests inventory serves before the crash", 1, 200
            ),
        ),
        apply=lambda p: {"inventory": {"bad_config_crash_after": p["crash_after"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_service_restarts_total",
                "counter",
                "Times the supervisor restarted a service.",
                ("service",),
            ),
        ),
        signature=signature(
            "inventory keeps dying and being restarted: restarts climb and users see errors",
            20,
            above("inventory.restarts", 2),
            below("users.success_ratio", 0.8),
        ),
        mitigations=(
            answered_by(
                "rollback-config",
                "with the good config back inventory stays up and users are served",
                30,
                above("users.success_ratio", 0.95),
                below("inventory.restarts_per_min", 1),
            ),
        ),
        explanation=Explanation(
            what_happens="A bad config reaches inventory. The code path that reads it fails a few requests after each start and the process exits. Its supervisor restarts it, each time after a longer backoff, and each new process dies the same way: inventory is down most of the time and users see errors.",
            why="Restarting fixes crashes caused by state (a leak, a stuck thread), not crashes caused by input that every new process reads again. Supervisors (systemd, Kubernetes' CrashLoopBackOff) back off exponentially so a crash loop does not burn the machine, which also means the service spends longer and longer down between short lives.",
            what_to_look_at="`inventory.restarts` climbing (`sdlab_service_restarts_total`), the sandbox's events (\"service crashed: exited with 78\", the exit code for a config error), and `users.success_ratio` falling in steps with each outage. Each restart resets inventory's counters: its request rate comes in short bursts.",
            how_systems_answer="Roll back first, debug later: keep the last good config and deploy changes gradually (canary, staged rollout) so a bad one stops at the first instances; validate config before it ships; make a process that cannot run with its config fail at start (a readiness check that never passes) rather than after taking traffic; alert on restarts, not only on availability.",
            further_reading=(
                "[Kubernetes: container restart policy and CrashLoopBackOff](https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy)",
                "[systemd.service: Restart= and RestartSec=](https://www.freedesktop.org/software/systemd/man/latest/systemd.service.html)",
                "[Google SRE workbook: Canarying releases](https://sre.google/workbook/canarying-releases/)",
            ),
        ),
        load_rps=20,
    ),
]

CALLERS = ("gateway", "orders", "worker")

SCENARIOS += [
    Scenario(
        slug="dns-failure",
        category="infrastructure",
        title="Name resolution fails",
        teaches="Every new connection starts with a name lookup: when the name server is slow "
        "or failing, calls fail and slow down though every service is healthy.",
        parameters=(
            Parameter(
                "failure_ratio", "float", 0.5, "share of lookups the name server fails", 0.05, 1.0
            ),
            Parameter(
                "delay_ms", "int", 100, "time the name server takes to answer", 0, 2000, unit="ms"
            ),
        ),
        # The callers open a connection per call (no keep-alive): each one needs a lookup.
        apply=lambda p: {
            s: {
                "dns_failure_ratio": p["failure_ratio"],
                "dns_delay_ms": p["delay_ms"],
                "client_connection_per_call": True,
            }
            for s in CALLERS
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_dns_lookups_total",
                "counter",
                "Name lookups, by outcome.",
                ("service", "dependency", "outcome"),
            ),
            MetricSpec(
                "sdlab_client_calls_total",
                "counter",
                "Calls to a dependency by outcome.",
                ("service", "dependency", "outcome"),
            ),
        ),
        signature=signature(
            "lookups fail and the gateway's calls wait for the name server: its latency climbs",
            20,
            above("gateway.dns_failures_rps", 2),
            above("gateway.p95_ms", 150),
        ),
        mitigations=(
            answered_by(
                "dns-cache",
                "answers are cached: connections skip the name server, failures and delay vanish",
                30,
                below("gateway.dns_failures_rps", 0.2),
                below("gateway.p95_ms", ratio=0.3),
            ),
        ),
        explanation=Explanation(
            what_happens="The services reach each other by name (`inventory.shop.internal`), and the clients open a new connection for every call, so every call starts with a name lookup. The name server turns slow and fails half its answers: calls wait for it, fail when it fails, are retried, and users see slow pages and errors, though every service is healthy.",
            why="Name resolution is a dependency of every dependency, and an easy one to forget: it sits in front of each new connection. Without a local cache (glibc does not cache; nscd or systemd-resolved do) every connection asks the name server, so its latency is added to every call and its failures become connection errors. Connection reuse hides the problem until something (a deploy, a restart, a pool resize) opens many connections at once.",
            what_to_look_at='`gateway.dns_failures_rps` (`sdlab_dns_lookups_total` by outcome) and `gateway.p95_ms` rising together while inventory\'s own latency stays flat: the time is spent before the request is even sent. The errors say "temporary failure in name resolution", not a status from the dependency.',
            how_systems_answer="Cache answers for their TTL near the client (nscd, systemd-resolved, NodeLocal DNSCache in Kubernetes) and serve a stale answer when the name server fails; reuse connections (keep-alive, pools) so lookups are rare; keep name-server timeouts short with a second server configured; and alert on lookup failures.",
            further_reading=(
                "[resolv.conf(5): options timeout and attempts](https://man7.org/linux/man-pages/man5/resolv.conf.5.html)",
                "[Kubernetes: NodeLocal DNSCache](https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/)",
                "[RFC 8767: serving stale data to improve DNS resiliency](https://www.rfc-editor.org/rfc/rfc8767)",
            ),
        ),
        load_rps=20,
    ),
]

SCENARIOS += [
    Scenario(
        slug="cold-start",
        category="infrastructure",
        title="Cold starts",
        teaches="A fresh process is cold: its first requests pay for the warm-up, all at once, "
        "and a service restarted often is slow again after every start.",
        parameters=(
            Parameter(
                "build_ms", "int", 300, "CPU time of one price-list build", 50, 1000, unit="ms"
            ),
            Parameter(
                "restart_after", "int", 80, "requests after which inventory restarts", 50, 2000
            ),
        ),
        apply=lambda p: {
            "inventory": {
                "price_table_lazy": True,
                "price_table_build_ms": p["build_ms"],
                "max_requests": p["restart_after"],
            }
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_price_table_builds_total",
                "counter",
                "Price-list builds started.",
                ("service",),
            ),
            MetricSpec(
                "sdlab_price_table_builds_in_flight",
                "gauge",
                "Price-list builds running now.",
                ("service",),
            ),
            MetricSpec("sdlab_warm", "gauge", "1 once the process is warm.", ("service",)),
            MetricSpec(
                "sdlab_service_restarts_total",
                "counter",
                "Times the supervisor restarted a service.",
                ("service",),
            ),
        ),
        signature=signature(
            "after each restart the first requests all build the price list: users wait seconds",
            30,
            above("inventory.restarts", 0.5),
            above("users.p95_ms", 250, ratio=5.0),
        ),
        mitigations=(
            answered_by(
                "readiness-gate",
                "each new process warms once before it answers: the jumps shrink",
                40,
                below("users.p95_ms", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Inventory is recycled every 80 requests (a worker-recycling setting far too low, as a deploy loop or a flapping autoscaler would do too), and every new process starts cold: its price list is built in memory on first use. Traffic arrives at once, every request that finds the list missing starts building it, the builds fight over the CPU, and inventory's latency jumps after every start.",
            why="A new process has nothing warm: caches are empty, modules and templates load on first use, JIT compilers have not compiled the hot paths, connection pools are empty. Lazy initialisation puts that cost on the first requests, and under load many requests arrive before the first one finishes, so without coordination the same work is done many times at once (a stampede inside one process), which makes the warm-up far longer than it needs to be.",
            what_to_look_at="`inventory.restarts` climbing and `users.p95_ms` spiking right after each restart, then settling; `sdlab_price_table_builds_in_flight` shows several builds running at once and `sdlab_warm` turning 1 when the process is ready. Averages hide it: look at the tail, and at the time since the last start.",
            how_systems_answer="Warm up before taking traffic: build caches, load modules and open pools at start, and report ready (a Kubernetes readiness probe, a load balancer's health check, slow start in Envoy or HAProxy) only when done, so the load balancer sends traffic to warm instances; make lazy initialisation happen once (single flight); restart less often and roll restarts so that warm instances carry the load meanwhile.",
            further_reading=(
                "[Kubernetes: readiness probes](https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/)",
                "[Envoy: slow start mode](https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/slow_start)",
                "[AWS Lambda: understanding cold starts](https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html)",
            ),
        ),
        load_rps=20,
    ),
]
