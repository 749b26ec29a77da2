"""Name resolution for the calls between services: a hosts table (the sandbox's own zone),
a name server that may answer slowly or not at all, and an optional cache with a TTL.

A client resolves its dependency's name for every new connection, as glibc does without
a caching daemon; a kept-alive connection needs no lookup.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping

from sandbox.mechanisms import TTLCache

DOMAIN = "shop.internal"


class ResolutionFailed(OSError):
    """The name did not resolve (a SERVFAIL, a timeout of the name server, an NXDOMAIN)."""


class Resolver:
    def __init__(
        self,
        hosts: Mapping[str, str],
        record: Callable[[str], None] = lambda outcome: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = dict(hosts)
        self.record = record  # told each lookup's outcome: ok, failed or cached
        self.cache: TTLCache[str] = TTLCache(max_entries=256, clock=clock)
        self.delay_s = 0.0  # how long the name server takes to answer
        self.failure_ratio = 0.0  # share of its answers that are failures
        self.ttl_s = 0.0  # how long an answer is kept (0: asked every time)

    async def resolve(self, name: str) -> str:
        if self.ttl_s > 0:
            cached = self.cache.get(name)
            if cached is not None:
                self.record("cached")
                return cached
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        address = self.hosts.get(name)
        if address is None or random.random() < self.failure_ratio:  # noqa: S311
            self.record("failed")
            raise ResolutionFailed(f"{name}: temporary failure in name resolution")
        if self.ttl_s > 0:
            self.cache.set(name, address, self.ttl_s)
        self.record("ok")
        return address
