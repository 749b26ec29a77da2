"""What every sandbox service shares: an aiohttp server with RED metrics, the injected
faults of its knobs, JSON logs with trace ids, and resilient clients of its dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.boards import watched
from sandbox.httpclient import ConnectionFailed, Pool
from sandbox.knobs import knobs_fingerprint, knobs_for
from sandbox.mechanisms import Bulkhead, CircuitBreaker, Rejected, RetryBudget, backoff_delay
from sandbox.resolver import DOMAIN, Resolver
from sandbox.server import json_response
from sandbox.services.hops import HopTable
from sandbox.telemetry import LogRing, ServiceMetrics, new_span_id, new_trace_id, traceparent_parse
from sandbox.topology import Topology
from sandbox.tracing import Tracing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INTERNAL_PREFIX = "/_"
IDLE_S = 5.0  # how long an idle background loop sleeps unless a knob wakes it
GAUGE_PERIOD_S = 1.0  # the supervisor samples once a second at most
UNWATCHED_GAUGE_S = 15.0  # as often as the supervisor samples a sandbox nobody watches


class DependencyError(Exception):
    """A call to a dependency failed after its retries; `outcome` says how."""

    def __init__(self, dependency: str, outcome: str, status: int | None = None) -> None:
        super().__init__(f"{dependency}: {outcome}")
        self.dependency = dependency
        self.outcome = outcome
        self.status = status


class Dependency:
    """One dependency as its caller sees it: a connection pool, timeouts, retries with
    backoff, an optional retry budget, circuit breaker and bulkhead, all set by knobs."""

    def __init__(self, service: Service, name: str, base_url: str) -> None:
        self.service = service
        self.name = name
        self.base_url = base_url
        self.pool: Pool | None = None
        self.pool_size = 0
        self.breaker = CircuitBreaker()
        self.bulkhead = Bulkhead(0)
        self.budget = RetryBudget(0.0)
        self.budget_ratio = 0.0
        self.resolver: Resolver | None = None

    def knob(self, name: str) -> Any:
        return self.service.knobs[name]

    def _pool(self) -> Pool:
        """The connection pool, replaced when its size knob changes: calls waiting in the
        old one finish there, new calls use the new size."""
        size = int(self.knob("client_pool_size"))
        if self.pool is None or size != self.pool_size:
            if self.pool is not None:
                old = self.pool
                asyncio.get_running_loop().create_task(old.close())
            self.pool = Pool.for_url(self.base_url, limit=size)
            self.pool_size = size
            self._resolver_attach(self.pool)
        self.pool.keep_alive = not self.knob("client_connection_per_call")
        return self.pool

    # infra helpers' scenarios: dns-failure (the dependency is reached by name)
    def _resolver_attach(self, pool: Pool) -> None:
        if self.resolver is None:
            counter = self.service.metrics.counter(
                "sdlab_dns_lookups",
                "Name lookups, by outcome.",
                ["service", "dependency", "outcome"],
            )
            service, dependency = self.service.name, self.name
            self.resolver = Resolver(
                {f"{self.name}.{DOMAIN}": pool.host},
                lambda outcome: counter.labels(service, dependency, outcome).inc(),
            )
            self._resolver_configure()
        pool.host = f"{self.name}.{DOMAIN}"
        pool.resolve = self.resolver.resolve

    def _resolver_configure(self) -> None:
        if self.resolver is not None:
            self.resolver.delay_s = float(self.knob("dns_delay_ms")) / 1000
            self.resolver.failure_ratio = float(self.knob("dns_failure_ratio"))
            self.resolver.ttl_s = float(self.knob("dns_cache_ttl_s"))

    def _configure(self) -> None:
        self.breaker.threshold = float(self.knob("client_breaker_threshold"))
        self.breaker.cooldown_s = float(self.knob("client_breaker_cooldown_ms")) / 1000
        self.bulkhead.limit = int(self.knob("client_bulkhead"))
        ratio = float(self.knob("client_retry_budget"))
        if ratio != self.budget_ratio:
            self.budget = RetryBudget(ratio)
            self.budget_ratio = ratio
        self._resolver_configure()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        trace: tuple[str, str] | None = None,
        timeout_s: float | None = None,
        expect: tuple[str, ...] = (),
    ) -> Any:
        """Returns the decoded JSON body, or raises DependencyError. `timeout_s` overrides
        the client timeout knob (for a long poll); `expect` names the fields the caller
        needs, checked when the client_validate knob is on."""
        self._configure()
        metrics = self.service.metrics
        labels = (self.service.name, self.name)
        started = time.perf_counter()
        breaker_on = bool(self.knob("client_breaker"))
        retries = int(self.knob("client_retries"))
        seconds = (
            timeout_s if timeout_s is not None else float(self.knob("client_timeout_ms")) / 1000
        )
        self.budget.on_call()
        outcome, status, attempt = "error", None, 0
        try:
            while True:
                attempt += 1
                try:
                    self.bulkhead.acquire()  # first: a refused call must not claim the probe
                    if breaker_on:
                        try:
                            self.breaker.before_call()
                        except Rejected:
                            self.bulkhead.release()
                            raise
                except Rejected as rejected:
                    outcome = "rejected"
                    metrics.breaker_state.labels(*labels).set(
                        self.breaker.state if breaker_on else 0
                    )
                    raise DependencyError(self.name, f"rejected: {rejected.reason}") from None
                metrics.bulkhead_in_use.labels(*labels).set(self.bulkhead.in_use)
                metrics.client_attempts.labels(*labels).inc()
                headers: dict[str, str] = {}
                ok = False
                try:
                    with self.service.tracing.client_span(
                        f"{method} {self.name}",
                        headers,
                        **{"peer.service": self.name, "url.path": path, "sandbox.attempt": attempt},
                    ) as span:
                        if span is None and trace:
                            headers["traceparent"] = f"00-{trace[0]}-{new_span_id()}-01"
                        response = await self._pool().request(
                            method, path, json_body=json, timeout=seconds, headers=headers
                        )
                    status = response.status
                    body = response.json() if response.status != 204 else None
                    ok = response.status < 500
                    outcome = "ok" if ok else "error"
                    # malformed-response: a 200 without the fields the caller needs is a failure
                    if ok and response.status < 400 and not self._valid(body, expect):
                        ok, outcome = False, "malformed"
                    if ok:
                        if response.status >= 400:
                            raise DependencyError(self.name, "refused", response.status)
                        return body
                except TimeoutError:
                    outcome = "timeout"
                except (ConnectionFailed, ValueError, OSError):
                    outcome = "error"
                finally:
                    self.bulkhead.release()
                    metrics.bulkhead_in_use.labels(*labels).set(self.bulkhead.in_use)
                    if breaker_on:
                        self.breaker.record(ok)
                        metrics.breaker_state.labels(*labels).set(self.breaker.state)
                if attempt > retries or (not self.budget.allow_retry() and self.budget_ratio > 0):
                    raise DependencyError(self.name, outcome, status)
                metrics.client_retries.labels(*labels).inc()
                await asyncio.sleep(
                    backoff_delay(
                        attempt,
                        float(self.knob("client_backoff_ms")),
                        bool(self.knob("client_jitter")),
                    )
                )
        finally:
            metrics.client_calls.labels(*labels, outcome).inc()
            metrics.client_latency.labels(*labels).observe(time.perf_counter() - started)

    def _valid(self, body: Any, expect: tuple[str, ...]) -> bool:
        if not expect or not self.knob("client_validate"):
            return True
        return isinstance(body, dict) and all(field in body for field in expect)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class Service:
    """One service process. Subclasses add routes in `routes()` and may run loops."""

    name = "service"

    def __init__(self, topology: Topology, knobs: dict[str, Any] | None = None) -> None:
        self.topology = topology
        self.knobs: dict[str, Any] = {k: v.default for k, v in knobs_for(self.name).items()}
        self.knobs.update(knobs or {})
        self.metrics = ServiceMetrics(self.name)
        self.metrics.knobs_fingerprint.labels(self.name).set(knobs_fingerprint(self.knobs))
        self.logs = LogRing(self.name)
        self.tracing = Tracing(self.name)
        self.dependencies = {
            dep: Dependency(self, dep, topology.dependency_url(self.name, dep))
            for dep in topology.dependencies(self.name)
        }
        # the fault proxy of the hops that lead here (none lead to the worker or loadgen)
        self.hops = (
            HopTable(topology, self.name, self.metrics, self.logs)
            if topology.hops_into(self.name)
            else None
        )
        self.leaked: list[bytes] = []
        self._publish_clock()
        self.started_at = time.monotonic()
        self.background: list[asyncio.Task[Any]] = []
        self.served = 0
        self.recycling = False
        self.knob_waiters: set[asyncio.Future[None]] = set()

    # -- clock: skewed by a knob, as a real machine's clock can be
    def now(self) -> float:
        return time.time() + float(self.knobs.get("clock_skew_s", 0.0))

    def routes(self) -> list[web.RouteDef]:
        return []

    async def on_start(self) -> None:
        """Subclasses start their loops here."""

    async def on_knobs(self, changed: dict[str, Any]) -> None:
        """Subclasses react to knob changes here (resize a pool, drop an index...)."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(
            [
                web.get("/_health", self._health),
                web.get("/_metrics", self._metrics),
                web.put("/_knobs", self._set_knobs),
                web.get("/_knobs", self._get_knobs),
                web.put("/_hops", self._set_hops),
                web.get("/_hops", self._get_hops),
                *self.routes(),
            ]
        )
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _: web.Application) -> None:
        if self.hops is not None:
            await self.hops.start()
        self.background.append(asyncio.create_task(self._background_cpu()))
        self.background.append(asyncio.create_task(self._disk_filler()))
        await self.on_start()

    async def _cleanup(self, _: web.Application) -> None:
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for dependency in self.dependencies.values():
            await dependency.close()
        if self.hops is not None:
            await self.hops.stop()
        self.tracing.shutdown()

    # -- internal endpoints (the supervisor's, not the shop's)
    async def _health(self, _: web.Request) -> web.Response:
        return json_response({"service": self.name, "ok": True})

    async def _metrics(self, _: web.Request) -> web.Response:
        if self.hops is not None:
            self.hops.publish()
        return web.Response(body=self.metrics.render(), content_type="text/plain")

    async def _get_knobs(self, _: web.Request) -> web.Response:
        return json_response(self.knobs)

    async def _get_hops(self, _: web.Request) -> web.Response:
        return json_response(self.hops.knobs if self.hops is not None else {})

    async def _set_hops(self, request: web.Request) -> web.Response:
        """The toxics of the hops that lead here: {hop name: {knob: value}}."""
        if self.hops is None:
            return json_response({"message": f"no hop leads to {self.name}"}, status=422)
        try:
            given = await request.json()
        except ValueError:
            return json_response({"message": "the body is not JSON"}, status=422)
        status, body = self.hops.put(given)
        return json_response(body, status=status)

    async def _set_knobs(self, request: web.Request) -> web.Response:
        given = await request.json()
        table = knobs_for(self.name)
        unknown = sorted(set(given) - set(table))
        if unknown:
            return json_response({"message": f"unknown knobs: {', '.join(unknown)}"}, status=422)
        changed = {k: v for k, v in given.items() if self.knobs.get(k) != v}
        before = {k: self.knobs.get(k) for k in changed}
        self.knobs.update(given)
        self.metrics.knobs_fingerprint.labels(self.name).set(knobs_fingerprint(self.knobs))
        for waiter in list(self.knob_waiters):
            if not waiter.done():
                waiter.set_result(None)
        if changed:
            self.logs.log("info", "knobs changed", changed=changed)
            if "nice" in changed:
                self._renice(int(changed["nice"]))
            if "clock_skew_s" in changed:
                self._publish_clock()
            try:
                await self.on_knobs(changed)
            except Exception:
                # Not applied after all: the old values (and their fingerprint) come back, so
                # the supervisor sends them again and the reaction gets another try.
                self.knobs.update(before)
                self.metrics.knobs_fingerprint.labels(self.name).set(knobs_fingerprint(self.knobs))
                raise
        return json_response(self.knobs)

    # -- every shop request passes here: RED metrics and the injected faults
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(INTERNAL_PREFIX):
            return await handler(request)
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "unmatched"
        )
        with self.tracing.server_span(
            f"{request.method} {route}",
            request.headers,
            **{
                "http.route": route,
                "http.request.method": request.method,
                "sandbox.service": self.name,
            },
        ) as span:
            parsed = traceparent_parse(request.headers.get("traceparent"))
            trace_id = self.tracing.trace_id(span) or (parsed[0] if parsed else new_trace_id())
            request["trace"] = (trace_id, new_span_id())
            status, response = await self._handle(request, handler, route)
            if span is not None:
                span.set_attribute("http.response.status_code", status)
            return response

    async def _handle(
        self, request: web.Request, handler: Handler, route: str
    ) -> tuple[int, web.StreamResponse]:
        trace = request["trace"]
        started = time.perf_counter()
        self.metrics.in_flight.labels(self.name).inc()
        status = 500
        try:
            await self._inject(request)
            response = await handler(request)
            status = response.status
            return status, response
        except InjectedFailure as exc:
            status = exc.status
            return status, json_response({"message": "injected failure"}, status=status)
        except web.HTTPException as exc:
            status = exc.status
            raise
        except DependencyError as exc:
            status = 503 if exc.outcome != "refused" else (exc.status or 502)
            return status, json_response({"message": str(exc)}, status=status)
        except Exception as exc:  # a bug or an injected failure: answer 500, log it
            status = 500
            self.logs.log(
                "error", "request failed", route=route, error=repr(exc), trace_id=trace[0]
            )
            return status, json_response({"message": "internal error"}, status=500)
        finally:
            elapsed = time.perf_counter() - started
            self._count_request()
            self.metrics.in_flight.labels(self.name).dec()
            self.metrics.requests.labels(self.name, route, str(status)).inc()
            self.metrics.latency.labels(self.name, route).observe(elapsed)
            if status >= 500 and random.random() < 0.2:  # noqa: S311 (sampling, not security)
                self.logs.log(
                    "warning",
                    "request answered with an error",
                    route=route,
                    status=status,
                    trace_id=trace[0],
                    duration_ms=round(elapsed * 1000, 1),
                )

    async def _inject(self, request: web.Request) -> None:
        k = self.knobs
        delay = float(k["delay_ms"])
        if k["delay_jitter_ms"]:
            delay += random.uniform(0, float(k["delay_jitter_ms"]))  # noqa: S311
        if k["slow_ratio"] and random.random() < float(k["slow_ratio"]):  # noqa: S311
            delay += float(k["slow_ms"])
        if delay > 0:
            self.metrics.injected.labels(self.name, "delay").inc()
            await asyncio.sleep(delay / 1000)
        if k["cpu_burn_ms"]:
            self.metrics.injected.labels(self.name, "cpu").inc()
            burn_cpu(float(k["cpu_burn_ms"]) / 1000)
        if k["leak_kb_per_request"]:
            self.metrics.injected.labels(self.name, "leak").inc()
            self.leaked.append(os.urandom(int(float(k["leak_kb_per_request"]) * 1024)))
        if self._failing_now():
            self.metrics.injected.labels(self.name, "error").inc()
            raise InjectedFailure(int(k["error_status"]))

    def _publish_clock(self) -> None:
        self.metrics.clock_skew.labels(self.name).set(float(self.knobs.get("clock_skew_s", 0.0)))

    async def figures_due(self) -> None:
        """Waits until a loop that keeps figures fresh should run again: a second while
        someone watches the sandbox, UNWATCHED_GAUGE_S otherwise. It looks each second, so
        figures are fresh again within one once someone watches."""
        waited = 0.0
        while True:
            await asyncio.sleep(GAUGE_PERIOD_S)
            waited += GAUGE_PERIOD_S
            if waited >= UNWATCHED_GAUGE_S or watched():
                return

    async def knobs_wait(self, timeout: float) -> None:
        """Sleeps until a knob changes or `timeout` passes: idle loops cost no wake-ups."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.knob_waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self.knob_waiters.discard(waiter)

    def _renice(self, niceness: int) -> None:
        """Lower priority is always allowed; raising it back needs privileges we may lack."""
        try:
            os.setpriority(os.PRIO_PROCESS, 0, max(0, min(19, niceness)))
        except OSError as exc:
            self.logs.log("warning", "cannot change priority", nice=niceness, error=str(exc))

    def _count_request(self) -> None:
        """With max_requests set, the service recycles itself (its supervisor restarts it)."""
        self.served += 1
        limit = int(self.knobs.get("max_requests", 0) or 0)
        if limit and self.served >= limit and not self.recycling:
            self.recycling = True
            self.logs.log("info", "recycling after max_requests", served=self.served)
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)

    def _failing_now(self) -> bool:
        k = self.knobs
        on, off = float(k["error_burst_on_s"]), float(k["error_burst_off_s"])
        if on > 0:
            phase = (time.monotonic() - self.started_at) % (on + off)
            if phase < on:
                return True
        return bool(k["error_ratio"]) and random.random() < float(k["error_ratio"])  # noqa: S311

    async def _background_cpu(self) -> None:
        """Burns `background_cpu_ratio` of a core in 10 ms slices: a noisy neighbour within."""
        while True:
            ratio = min(
                float(self.knobs.get("background_cpu_ratio", 0.0)),
                float(self.knobs.get("background_cpu_cap", 1.0)),
            )
            if ratio <= 0:
                await self.knobs_wait(IDLE_S)
                continue
            burn_cpu(0.01 * ratio)
            await asyncio.sleep(0.01 * (1 - ratio))

    async def _disk_filler(self) -> None:
        """Writes `disk_fill_mb_per_s` into the sandbox's data directory until its quota
        is used up (a runaway log, say); `disk_cleanup` rotates it away."""
        path = os.path.join(data_dir(), f"{self.name}-fill.bin")
        while True:
            idle = not self.knobs.get("disk_fill_mb_per_s") and not self.knobs.get("disk_cleanup")
            if idle:
                await self.knobs_wait(IDLE_S)  # nothing to do until a knob says so
                continue
            await asyncio.sleep(0.1)
            if self.knobs.get("disk_cleanup") and os.path.exists(path):
                os.unlink(path)
                self.logs.log("info", "disk cleaned up", file=os.path.basename(path))
                continue
            rate = float(self.knobs.get("disk_fill_mb_per_s", 0.0))
            if rate <= 0 or self.knobs.get("disk_cleanup"):
                continue
            room = disk_quota_bytes() - disk_used_bytes()
            size = min(int(rate * 2**20 / 10), room)
            if size <= 0:
                continue
            try:
                with open(path, "ab") as f:
                    f.write(b"\0" * size)
            except OSError as exc:
                self.logs.log("error", "disk write failed", error=str(exc))


def data_dir() -> str:
    return os.environ.get("SANDBOX_DATA_DIR", ".")


def disk_quota_bytes() -> int:
    return int(float(os.environ.get("SANDBOX_DISK_QUOTA_MB", "64")) * 2**20)


def disk_used_bytes() -> int:
    """What the sandbox's data directory holds: its disk, as far as it knows."""
    total = 0
    with os.scandir(data_dir()) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


class InjectedFailure(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"injected failure {status}")
        self.status = status


def burn_cpu(seconds: float, clock: Callable[[], float] = time.process_time) -> None:
    """Real CPU work, not a sleep: the loop is busy and nothing else runs meanwhile. On the
    process's clock by default; on one thread's (`time.thread_time`), threads pay apart."""
    deadline = clock() + seconds
    x = 0
    while clock() < deadline:
        for i in range(500):
            x += i * i
    _ = x
