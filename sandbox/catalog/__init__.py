"""The scenario catalog: every scenario and mitigation the sandbox knows."""

from sandbox.catalog import (
    caching,
    concurrency,
    consistency,  # stale-read, cache-invalidation-race
    database,
    database_locks,
    http,
    infrastructure,
    latency,
    network,
    performance,
    performance_runtime,
    resilience,
    resources,
)
from sandbox.catalog.mitigations import MITIGATIONS
from sandbox.spec import Scenario

_MODULES = (
    latency,
    http,
    resources,
    resilience,
    network,
    infrastructure,
    performance,
    database,
    caching,
    consistency,
    concurrency,  # concurrency: double-write, lost-update, optimistic-locking-collision...
    database_locks,  # dbperf: deadlock, row-lock-contention
    performance_runtime,  # dbperf: lock-contention, gc-pause
)
SCENARIOS: dict[str, Scenario] = {s.slug: s for module in _MODULES for s in module.SCENARIOS}

__all__ = ["MITIGATIONS", "SCENARIOS"]
