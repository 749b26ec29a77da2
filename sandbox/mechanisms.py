"""The real resilience mechanisms the services use: each one does what its name says."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Rejected(Exception):
    """A mechanism refused the call before it was made (open breaker, full bulkhead...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CircuitBreaker:
    """Closed -> open when the failure ratio of the recent calls passes `threshold`;
    open -> half-open after `cooldown_s`; one probe decides closed or open again."""

    CLOSED, HALF_OPEN, OPEN = 0, 1, 2

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        cooldown_s: float = 2.0,
        window: int = 20,
        min_calls: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.min_calls = min_calls
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.state = self.CLOSED
        self.opened_at = 0.0
        self.probe_in_flight = False
        self.clock = clock
        self.opened_total = 0

    def before_call(self) -> None:
        if self.state == self.OPEN:
            if self.clock() - self.opened_at < self.cooldown_s:
                raise Rejected("breaker open")
            self.state = self.HALF_OPEN
            self.probe_in_flight = False
        if self.state == self.HALF_OPEN:
            if self.probe_in_flight:
                raise Rejected("breaker half-open")
            self.probe_in_flight = True

    def record(self, ok: bool) -> None:
        if self.state == self.HALF_OPEN:
            self.probe_in_flight = False
            if ok:
                self.state = self.CLOSED
                self.outcomes.clear()
            else:
                self._open()
            return
        self.outcomes.append(ok)
        failures = self.outcomes.count(False)
        if len(self.outcomes) >= self.min_calls and failures / len(self.outcomes) >= self.threshold:
            self._open()

    def _open(self) -> None:
        self.state = self.OPEN
        self.opened_at = self.clock()
        self.opened_total += 1


class Bulkhead:
    """At most `limit` calls at once; the next one is refused at once, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.rejected_total = 0

    def acquire(self) -> None:
        if self.limit and self.in_use >= self.limit:
            self.rejected_total += 1
            raise Rejected("bulkhead full")
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1


class TokenBucket:
    """Admits `rate` requests per second on average, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.tokens = self.burst
        self.clock = clock
        self.updated = clock()

    def admit(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RetryBudget:
    """Retries may be at most `ratio` of calls: each call deposits `ratio` tokens, each
    retry withdraws one (Finagle's budget). A small reserve lets a quiet client retry."""

    def __init__(self, ratio: float, reserve: float = 3.0) -> None:
        self.ratio = ratio
        self.tokens = reserve
        self.cap = reserve + 50 * ratio
        self.exhausted_total = 0

    def on_call(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def allow_retry(self) -> bool:
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.exhausted_total += 1
        return False


def backoff_delay(attempt: int, base_ms: float, jitter: bool, cap_ms: float = 2000.0) -> float:
    """Seconds to wait before retry number `attempt` (1-based): exponential, capped,
    with full jitter when asked (so retries of many clients do not line up)."""
    ceiling = min(cap_ms, base_ms * (2 ** (attempt - 1)))
    return (random.uniform(0, ceiling) if jitter else ceiling) / 1000.0  # noqa: S311


@dataclass
class Entry(Generic[T]):
    value: T
    expires_at: float


class TTLCache(Generic[T]):
    """A bounded cache with real expiry; evicts the oldest entry when full."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.entries: dict[Hashable, Entry[T]] = {}
        self.clock = clock
        self.hits = self.misses = self.evictions = self.expirations = 0

    def get(self, key: Hashable) -> T | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires_at <= self.clock():
            del self.entries[key]
            self.expirations += 1
            self.misses += 1
            return None
        self.hits += 1
        return entry.value

    def set(self, key: Hashable, value: T, ttl_s: float) -> None:
        if key not in self.entries and len(self.entries) >= self.max_entries:
            oldest = next(iter(self.entries))
            del self.entries[oldest]
            self.evictions += 1
        self.entries.pop(key, None)
        self.entries[key] = Entry(value, self.clock() + ttl_s)

    def delete(self, key: Hashable) -> None:
        self.entries.pop(key, None)


class SingleFlight:
    """Request coalescing: concurrent calls for one key share one execution."""

    def __init__(self) -> None:
        self.in_flight: dict[Hashable, asyncio.Future[Any]] = {}
        self.coalesced_total = 0

    async def do(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        existing = self.in_flight.get(key)
        if existing is not None:
            self.coalesced_total += 1
            return await asyncio.shield(existing)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.in_flight[key] = future
        try:
            result = await work()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it; no "never retrieved" warning
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self.in_flight[key]


class Pool(Generic[T]):
    """A fixed set of resources (database connections) handed out one at a time.
    When all are in use callers wait, up to `timeout_s`, then fail: the pool runs dry."""

    def __init__(self, resources: list[T], timeout_s: float) -> None:
        self.free: deque[T] = deque(resources)
        self.size = len(resources)
        self.timeout_s = timeout_s
        self.waiters: deque[asyncio.Future[T]] = deque()
        self.timeouts_total = 0

    @property
    def in_use(self) -> int:
        return self.size - len(self.free)

    async def acquire(self) -> T:
        if self.free:
            return self.free.popleft()
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, self.timeout_s)
        except TimeoutError:
            self.timeouts_total += 1
            raise Rejected("pool exhausted") from None
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)

    def release(self, resource: T) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(resource)
                return
        self.free.append(resource)
