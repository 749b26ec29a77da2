"""The scenario catalog: every scenario and mitigation the sandbox knows."""

from sandbox.catalog import (
    caching,
    concurrency,
    consistency,  # stale-read, cache-invalidation-race
    database,
    http,
    infrastructure,
    latency,
    network,
    performance,
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
)
SCENARIOS: dict[str, Scenario] = {s.slug: s for module in _MODULES for s in module.SCENARIOS}

__all__ = ["MITIGATIONS", "SCENARIOS"]
