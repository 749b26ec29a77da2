"""A warm pool of ready sandboxes per scenario set: a start claims one instead of booting.

`LAB_WARM_POOL` ("free-play=2,retry-storm=1") says how many to keep ready; beat's
`pool_fill` tops the pools up and recycles sandboxes that waited too long. A pool is a
Redis list of handles, so claiming is one atomic LPOP, whichever worker asks. A warm
sandbox has no scenario on: the session's scenarios are switched on when it is claimed.
"""

import json
import logging
import secrets
import time

from django.conf import settings

from apps.scenarios.backends import sandbox_backend
from apps.scenarios.events import redis_prefix, relay_redis
from apps.scenarios.models import SANDBOX_TTL_S
from sandbox.backends.base import SandboxHandle, SandboxSpec, SandboxStartError, SandboxStatus

log = logging.getLogger(__name__)
POOL_PREFIX = "pool-"
# A warm sandbox lives this long at most (its own TTL is longer: the claimed lab's time).
POOL_MAX_AGE_S = 1800


def pool_sizes() -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in (settings.LAB_WARM_POOL or "").split(","):
        name, _, count = item.strip().partition("=")
        if name and count.strip().isdigit():
            sizes[name.strip()] = int(count)
    return sizes


def _key(scenario_set: str) -> str:
    return f"{redis_prefix()}:pool:{scenario_set}"


def pool_claim(scenario_set: str) -> SandboxHandle | None:
    """A ready sandbox from the set's pool, or None (the caller boots one)."""
    client = relay_redis()
    backend = sandbox_backend()
    while raw := client.lpop(_key(scenario_set)):
        handle = SandboxHandle.from_dict(json.loads(raw))  # type: ignore[arg-type]
        if backend.status(handle) == SandboxStatus.RUNNING:
            return handle
        backend.stop(handle)  # died while it waited: not handed to anyone
    return None


def pool_members() -> set[str]:
    """Sandbox ids waiting in any pool."""
    client = relay_redis()
    members = set()
    for key in client.scan_iter(f"{redis_prefix()}:pool:*"):
        for raw in client.lrange(key, 0, -1):
            members.add(json.loads(raw)["sandbox_id"])
    return members


def pool_fill() -> dict[str, int]:
    """Tops every pool up to its size and recycles sandboxes past POOL_MAX_AGE_S."""
    client = relay_redis()
    backend = sandbox_backend()
    started: dict[str, int] = {}
    for scenario_set, size in pool_sizes().items():
        key = _key(scenario_set)
        for raw in client.lrange(key, 0, -1):
            handle = SandboxHandle.from_dict(json.loads(raw))
            age = time.time() - float(handle.details.get("started_at") or 0)
            if age > POOL_MAX_AGE_S and client.lrem(key, 1, raw):  # type: ignore[arg-type]
                backend.stop(handle)
        started[scenario_set] = 0
        while client.llen(key) < size:
            spec = SandboxSpec(
                session_id=f"{POOL_PREFIX}{secrets.token_hex(4)}",
                ttl_seconds=SANDBOX_TTL_S + POOL_MAX_AGE_S,
            )
            try:
                handle = backend.start(spec)
            except (SandboxStartError, OSError) as exc:
                log.warning("warm pool start failed", extra={"error": str(exc)})
                break
            client.rpush(key, json.dumps(handle.as_dict()))
            started[scenario_set] += 1
    return started
