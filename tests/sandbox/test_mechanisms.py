"""The mechanisms do what their names say (driven by an explicit clock, not by sleeping)."""

import asyncio

import pytest

from sandbox.figures import quantile
from sandbox.mechanisms import (
    Bulkhead,
    CircuitBreaker,
    Pool,
    Rejected,
    RetryBudget,
    SingleFlight,
    TokenBucket,
    TTLCache,
    backoff_delay,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_rejects_probes_and_closes():
    clock = Clock()
    breaker = CircuitBreaker(threshold=0.5, cooldown_s=2.0, min_calls=4, clock=clock)
    for ok in (True, False, False, False):
        breaker.before_call()
        breaker.record(ok)
    assert breaker.state == CircuitBreaker.OPEN
    with pytest.raises(Rejected, match="breaker open"):
        breaker.before_call()
    clock.now = 2.5
    breaker.before_call()  # the probe
    with pytest.raises(Rejected, match="half-open"):
        breaker.before_call()
    breaker.record(True)
    assert breaker.state == CircuitBreaker.CLOSED


def test_breaker_reopens_when_the_probe_fails():
    clock = Clock()
    breaker = CircuitBreaker(threshold=0.5, cooldown_s=1.0, min_calls=2, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record(False)
    clock.now = 1.5
    breaker.before_call()
    breaker.record(False)
    assert breaker.state == CircuitBreaker.OPEN
    assert breaker.opened_total == 2


def test_bulkhead_refuses_past_its_limit():
    bulkhead = Bulkhead(2)
    bulkhead.acquire()
    bulkhead.acquire()
    with pytest.raises(Rejected, match="bulkhead full"):
        bulkhead.acquire()
    bulkhead.release()
    bulkhead.acquire()
    assert bulkhead.rejected_total == 1


def test_token_bucket_admits_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    assert [bucket.admit() for _ in range(3)] == [True, True, False]
    clock.now = 0.1
    assert bucket.admit()
    assert not bucket.admit()


def test_retry_budget_caps_retries_to_a_share_of_calls():
    budget = RetryBudget(ratio=0.1, reserve=0)
    allowed = 0
    for _ in range(100):
        budget.on_call()
        allowed += budget.allow_retry()
    assert 9 <= allowed <= 10
    assert budget.exhausted_total >= 90


def test_backoff_grows_and_jitter_stays_under_it():
    assert [backoff_delay(n, 100, jitter=False) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff_delay(10, 100, jitter=False) == 2.0  # capped
    assert all(0 <= backoff_delay(3, 100, jitter=True) <= 0.4 for _ in range(50))


def test_ttl_cache_expires_evicts_and_counts():
    clock = Clock()
    cache: TTLCache[str] = TTLCache(max_entries=2, clock=clock)
    cache.set("a", "1", ttl_s=5)
    assert cache.get("a") == "1"
    clock.now = 6
    assert cache.get("a") is None
    cache.set("b", "2", 10)
    cache.set("c", "3", 10)
    cache.set("d", "4", 10)
    assert cache.get("b") is None
    assert (cache.hits, cache.misses, cache.expirations, cache.evictions) == (1, 2, 1, 1)


def test_single_flight_shares_one_execution():
    calls = 0

    async def scenario():
        nonlocal calls
        flight = SingleFlight()
        gate = asyncio.Event()

        async def fetch():
            nonlocal calls
            calls += 1
            await gate.wait()
            return "value"

        waiting = [asyncio.create_task(flight.do("k", fetch)) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*waiting), flight.coalesced_total

    results, coalesced = asyncio.run(scenario())
    assert results == ["value"] * 5
    assert calls == 1
    assert coalesced == 4


def test_pool_runs_dry_and_hands_back():
    async def scenario():
        pool = Pool(["c1"], timeout_s=0.05)
        first = await pool.acquire()
        with pytest.raises(Rejected, match="pool exhausted"):
            await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0)
        pool.release(first)
        return await waiter, pool.timeouts_total

    assert asyncio.run(scenario()) == ("c1", 1)


def test_quantile_interpolates_inside_the_bucket():
    before = {0.1: 0.0, 0.5: 0.0, float("inf"): 0.0}
    after = {0.1: 50.0, 0.5: 100.0, float("inf"): 100.0}
    assert quantile(0.5, before, after) == pytest.approx(0.1)
    assert quantile(0.75, before, after) == pytest.approx(0.3)
    assert quantile(0.5, after, after) != quantile(0.5, after, after)  # nan: no observations


def test_a_restarted_service_counts_from_zero_not_backwards():
    from sandbox.figures import figures_compute, snapshot_from

    def requests(count: float, at: float):
        labels = {"service": "gateway", "route": "/products/{sku}", "status": "200"}
        return snapshot_from([("sdlab_requests_total", labels, count)], at)

    steady = figures_compute(requests(1000, 0.0), requests(1050, 5.0), ["gateway"])
    assert steady["gateway.rps"] == 10.0
    restarted = figures_compute(requests(1000, 0.0), requests(20, 5.0), ["gateway"])
    assert restarted["gateway.rps"] == 4.0  # 20 requests since the restart, never negative
