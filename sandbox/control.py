"""The supervisor's event loop: children, knobs, figures and the control API.

Control API (the sandbox contract, DESIGN.md):
    GET  /health                   ready or not (503 until every service answers)
    GET  /state                    topology, scenarios, mitigations, key figures, events
    GET  /metrics                  Prometheus text of every service, merged
    GET  /catalog                  scenarios and mitigations this sandbox knows
    GET  /logs?since=N             recent JSON log lines of every service
    POST /scenarios/{slug}         enable (or change) with JSON parameters; 422 names a bad one
    DELETE /scenarios/{slug}       disable
    POST /mitigations/{slug}       turn on;  DELETE turns off
    PUT  /load                     {"rate_rps": N}: the simulated users' arrival rate
    GET  /traces?since=N           spans kept for the control plane (with --traces)
    POST /stop                     stop the sandbox
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.boards import ServiceBoards
from sandbox.catalog import MITIGATIONS, SCENARIOS
from sandbox.catalog._build import REQUEST_METRICS
from sandbox.engine import Engine, UnknownSlug
from sandbox.figures import Layout, SampleKey, Snapshot, declared_values, figures_compute
from sandbox.knobs import KnobSettings, knobs_fingerprint
from sandbox.runtime import RESTART_BACKOFF_S, Child, RuntimeOptions, fork_child
from sandbox.server import Server
from sandbox.services.hops import HOP_SERIES_PREFIX
from sandbox.spec import ParameterError
from sandbox.telemetry import PROCESS_FIGURES, ProcessFigures
from sandbox.topology import SERVICES, Topology, hop_callee

WINDOW_S = 5.0
WATCHED_FOR_S = 60.0
# Read by the supervisor from /proc, not off the services' boards.
PROCESS_SERIES = frozenset(PROCESS_FIGURES)
PROCESS_KEYS: dict[str, tuple[SampleKey, ...]] = {
    name: tuple((series, (("service", name),)) for series in PROCESS_FIGURES) for name in SERVICES
}
FINGERPRINT_KEYS: dict[str, SampleKey] = {
    name: ("sdlab_knobs_fingerprint", (("service", name),)) for name in SERVICES
}


def restart_keys(names: tuple[str, ...]) -> tuple[SampleKey, ...]:
    return tuple(("sdlab_service_restarts_total", (("service", name),)) for name in names)


TRACE_BUFFER_BATCHES = 500  # the oldest spans go first when nobody collects
MAX_TRACE_BATCHES_PER_READ = 100
COMMON_METRICS = frozenset(m.name for m in REQUEST_METRICS)
UNWATCHED_SAMPLE_S = 15.0  # nobody looking: keep figures warm, spend almost nothing
UNEXPECTED_END = "failed: the supervisor ended unexpectedly"
STABLE_AFTER_S = 30.0  # a service up this long has recovered: its next restart is quick again
MAX_LOAD_RPS = 200.0


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"message": message, "extra": extra}, status=status)


def merge_exposition(texts: list[str]) -> str:
    """Prometheus text of several processes as one: each family's HELP/TYPE once."""
    order: list[str] = []
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for text in texts:
        family = ""
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# "):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    if family not in headers:
                        order.append(family)
                        headers[family] = []
                        samples[family] = []
                    if not any(h.startswith(f"# {parts[1]} ") for h in headers[family]):
                        headers[family].append(line)
                continue
            samples.setdefault(family, []).append(line)
    out: list[str] = []
    for family in order:
        out.extend(headers[family])
        out.extend(samples[family])
    return "\n".join(out) + "\n"


class Supervisor:
    def __init__(
        self,
        options: RuntimeOptions,
        topology: Topology,
        children: dict[str, Child],
        data_dir: Path,
        ready_from: int,
    ) -> None:
        self.options = options
        self.topology = topology
        self.children = children
        self.data_dir = data_dir
        self.engine = Engine(topology, SCENARIOS, MITIGATIONS)
        self.pushed: KnobSettings = {}
        self.snapshots: deque[Snapshot] = deque(maxlen=int(WINDOW_S * 4) + 8)
        self.figures_of: tuple[Snapshot, dict[str, float | None]] | None = None  # newest's
        self.watched_at = time.monotonic()
        self.started_at = time.time()
        self.expires_at = self.started_at + options.ttl_seconds
        self.stopping = asyncio.Event()
        self.child_exited = asyncio.Event()
        self.ready = False
        self.http: aiohttp.ClientSession | None = None
        self.push_lock = asyncio.Lock()
        self.push_failed = False  # a service did not take its knobs: the sampler tries again
        self.pushes = 0
        self.intended: dict[str, int] = {}  # service -> fingerprint of the knobs it should run
        self.knob_resends = 0  # knob sets sent again because a service had drifted
        # Until the sandbox ends on purpose (stop or expiry) any end is a failure.
        self.end_reason = UNEXPECTED_END
        self.trace_batches: deque[tuple[int, bytes]] = deque(maxlen=TRACE_BUFFER_BATCHES)
        self.trace_sequence = 0
        self.process_figures = ProcessFigures()
        self.last_read: dict[str, tuple[tuple[SampleKey, ...], list[float]]] = {}
        self.last_process: dict[str, list[float]] = {}
        self.kept_of: dict[str, tuple[tuple[SampleKey, ...], tuple[SampleKey, ...], list[int]]] = {}
        self.restart_keys: tuple[tuple[str, ...], tuple[SampleKey, ...]] = ((), ())
        self.layout: Layout | None = None
        self.scenario_metrics_of: (
            tuple[Snapshot, tuple[str, ...], dict[str, list[dict[str, object]]]] | None
        ) = None
        self.ready_from = ready_from  # services write their name here once they serve

    @property
    def client(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("the supervisor's HTTP client is not open")
        return self.http

    # -- lifecycle
    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        servers: list[Server | web.AppRunner] = []
        tasks: list[asyncio.Task[Any]] = []
        try:
            servers = await self.control_start()
            tasks = [asyncio.create_task(self.reap()), asyncio.create_task(self.expire())]
            if not await self.wait_healthy(20.0):
                self.engine._record("sandbox failed to start", services=self.unhealthy)
                self.end_reason = "failed: services did not start: " + ", ".join(self.unhealthy)
                return 3
            for slug, parameters in self.options.scenarios:
                self.engine.scenario_enable(slug, parameters)
            if self.options.load_rps is not None:
                self.engine.set_base({"loadgen": {"rate_rps": self.options.load_rps}})
            await self.push()
            self.ready = True
            # The backend waits for this file, a stat() away, instead of asking /health.
            (self.options.run_dir / "ready").touch()
            tasks.append(asyncio.create_task(self.sample()))
            await self.stopping.wait()
            if self.end_reason == UNEXPECTED_END:
                self.end_reason = "stopped"
            return 0
        except (ParameterError, UnknownSlug) as exc:
            print(f"sandbox: {exc}", flush=True)
            self.end_reason = f"failed: {exc}"
            return 2
        finally:
            self.ready = False
            # Why it ends, written first: the backend reads it while the processes go.
            (self.options.run_dir / "exit.json").write_text(
                json.dumps({"reason": self.end_reason, "at": time.time()})
            )
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.children_stop()
            for server in servers:
                await (server.stop() if isinstance(server, Server) else server.cleanup())
            await self.client.close()

    async def control_start(self) -> list[Server | web.AppRunner]:
        """The control API, on the services' lean server (`sandbox.server`): the relay reads
        `/state` of every watched sandbox once a second, and aiohttp's server spent a few
        tenths of a millisecond of Python on each. OTLP spans, when kept, arrive through
        aiohttp's, which takes their larger bodies."""
        app = web.Application()
        app.add_routes(
            [
                web.get("/health", self.h_health),
                web.get("/state", self.h_state),
                web.get("/metrics", self.h_metrics),
                web.get("/catalog", self.h_catalog),
                web.get("/logs", self.h_logs),
                web.post("/scenarios/{slug}", self.h_scenario_enable),
                web.delete("/scenarios/{slug}", self.h_scenario_disable),
                web.post("/mitigations/{slug}", self.h_mitigation_enable),
                web.delete("/mitigations/{slug}", self.h_mitigation_disable),
                web.put("/load", self.h_load),
                web.post("/stop", self.h_stop),
                web.get("/traces", self.h_traces),
            ]
        )
        control = Server(app)
        socket_path = self.options.run_dir / "control.sock"
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        await control.start_unix(str(socket_path))
        os.chmod(socket_path, 0o660)
        if self.options.control_port:
            await control.start(self.options.control_host, self.options.control_port)
        if not self.options.traces:
            return [control]
        receiver = web.Application(client_max_size=4 * 2**20)
        receiver.add_routes([web.post("/v1/traces", self.h_receive_spans)])
        receiver_runner = web.AppRunner(receiver, access_log=None, handle_signals=False)
        await receiver_runner.setup()
        await web.TCPSite(receiver_runner, self.topology.host, self.topology.trace_port).start()
        return [control, receiver_runner]

    async def h_receive_spans(self, request: web.Request) -> web.Response:
        """OTLP/HTTP from the services: kept as sent, in a bounded buffer."""
        self.trace_sequence += 1
        self.trace_batches.append((self.trace_sequence, await request.read()))
        return web.Response(status=200, content_type="application/x-protobuf")

    async def h_traces(self, request: web.Request) -> web.Response:
        """The kept batches after `since`, oldest first, each an OTLP/HTTP protobuf body."""
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return error(422, "since must be a whole number", parameter="since")
        batches = [
            {"seq": seq, "otlp": base64.b64encode(body).decode()}
            for seq, body in self.trace_batches
            if seq > since
        ][:MAX_TRACE_BATCHES_PER_READ]
        return web.json_response(
            {
                "enabled": self.options.traces,
                "batches": batches,
                "next": batches[-1]["seq"] if batches else since,
            }
        )

    @property
    def unhealthy(self) -> list[str]:
        return [name for name, child in self.children.items() if not child.healthy]

    async def wait_healthy(self, timeout_s: float) -> bool:
        """Until every service serves, as each says by writing its name to the ready pipe
        once it listens (the supervisor polls nobody)."""
        fd = self.ready_from
        loop = asyncio.get_running_loop()
        all_ready = asyncio.Event()
        heard = b""

        def readable() -> None:
            nonlocal heard
            try:
                heard += os.read(fd, 4096)
            except BlockingIOError:
                return
            *names, heard = heard.split(b"\n")
            for name in names:
                child = self.children.get(name.decode(errors="replace"))
                if child is not None:
                    child.healthy = True
            if not self.unhealthy:
                all_ready.set()

        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
        try:
            await asyncio.wait_for(all_ready.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return not self.unhealthy

    async def service_ok(self, name: str) -> bool:
        try:
            url = f"http://{self.topology.host}:{self.topology.service_port(name)}/_health"
            async with self.client.get(url, timeout=aiohttp.ClientTimeout(total=0.5)) as response:
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def reap(self) -> None:
        """Restarts a service that died (out of memory, crashed), with backoff."""
        for child in self.children.values():
            self.exit_watch(child.pid)
        while True:
            await self.child_exited.wait()
            self.child_exited.clear()
            for name, child in list(self.children.items()):
                try:
                    pid, status = os.waitpid(child.pid, os.WNOHANG)
                except ChildProcessError:
                    pid, status = child.pid, 0
                if pid == 0 or self.stopping.is_set():
                    continue
                how = (
                    f"killed by signal {os.WTERMSIG(status)}"
                    if os.WIFSIGNALED(status)
                    else f"exited with {os.WEXITSTATUS(status)}"
                )
                child.exit_status = how
                child.running = False
                self.engine._record("service crashed", service=name, how=how)
                if time.monotonic() - child.started_at > STABLE_AFTER_S:
                    child.backoff = 0
                planned = (
                    os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                )  # recycled on purpose
                delay = (
                    0.0
                    if planned
                    else RESTART_BACKOFF_S[min(child.backoff, len(RESTART_BACKOFF_S) - 1)]
                )
                child.backoff += 0 if planned else 1
                await asyncio.sleep(delay)
                if self.stopping.is_set():
                    return
                # Fresh boards: the new process's counters start at zero, its log empty.
                boards = ServiceBoards()
                boards.metrics.watched = time.monotonic() - self.watched_at < WATCHED_FOR_S
                inherited = [c.boards for c in self.children.values() if c.boards is not None]
                child.pid = fork_child(
                    name, self.topology, self.data_dir, boards, [*inherited, boards]
                )
                if child.boards is not None:
                    child.boards.close()
                child.boards = boards
                child.running = True
                self.exit_watch(child.pid)
                child.restarts += 1
                child.started_at = time.monotonic()
                self.engine._record("service restarted", service=name, restarts=child.restarts)
                self.pushed.pop(name, None)
                # the hops leading to it lived in its process: their toxics went with it
                for target in [t for t in self.pushed if t.startswith("hop:")]:
                    if hop_callee(target) == name:
                        self.pushed.pop(target)
                asyncio.get_running_loop().create_task(self.push_when_up(name))

    def exit_watch(self, pid: int) -> None:
        """Wakes the reaper once when the process ends: nothing polls while all run."""
        # uvloop keeps SIGCHLD to itself; a pidfd turns readable when its process exits.
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already
            self.child_exited.set()
            return
        loop = asyncio.get_running_loop()

        def exited() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self.child_exited.set()

        loop.add_reader(fd, exited)

    async def push_when_up(self, name: str) -> None:
        for _ in range(200):
            if await self.service_ok(name):
                await self.push()
                return
            await asyncio.sleep(0.05)

    async def expire(self) -> None:
        await asyncio.sleep(max(0.0, self.expires_at - time.time()))
        self.engine._record("sandbox expired")
        self.end_reason = "expired"
        self.stopping.set()

    async def children_stop(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        alive = {c.pid for c in self.children.values()}
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    alive.discard(pid)
            await asyncio.sleep(0.02)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    # -- knobs
    async def push(self) -> None:
        """Sends each service the knobs that changed, and the toxics that changed on the
        hops leading to it (its process serves them)."""
        async with self.push_lock:
            self.pushes += 1
            effective = self.engine.effective()
            # What each service should report: computed once per change, not per sample.
            self.intended = {name: knobs_fingerprint(effective[name]) for name in SERVICES}
            hops: dict[str, dict[str, dict[str, Any]]] = {}  # callee -> {hop: changed}
            calls: list[tuple[str, str, dict[str, Any]]] = []  # (service, endpoint, body)
            for target, knobs in effective.items():
                changed = {
                    k: v for k, v in knobs.items() if self.pushed.get(target, {}).get(k) != v
                }
                if not changed:
                    continue
                if target.startswith("hop:"):
                    hops.setdefault(hop_callee(target), {})[target] = changed
                else:
                    calls.append((target, "/_knobs", changed))
            calls += [(callee, "/_hops", body) for callee, body in hops.items()]
            results = await asyncio.gather(
                *(self._put(service, endpoint, body) for service, endpoint, body in calls)
            )
            # A saturated service may miss its 3 s to answer (a CPU-bound scenario's, when
            # the mitigation for it arrives): the next sample pushes again.
            self.push_failed = not all(results)
            for (target, endpoint, body), ok in zip(calls, results, strict=True):
                if not ok:
                    continue
                if endpoint == "/_hops":
                    for hop, knobs in body.items():
                        self.pushed.setdefault(hop, {}).update(knobs)
                else:
                    self.pushed.setdefault(target, {}).update(body)

    async def _put(self, service: str, endpoint: str, body: dict[str, Any]) -> bool:
        port = self.topology.service_port(service)
        try:
            async with self.client.put(
                f"http://{self.topology.host}:{port}{endpoint}", json=body
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    # -- figures
    async def sample(self) -> None:
        while True:
            started = time.monotonic()
            try:
                if self.push_failed:
                    await self.push()
                await self.take_snapshot()
            except Exception as exc:  # the figures must outlive one bad sample
                self.engine._record("sampling failed", error=repr(exc))
            watched = time.monotonic() - self.watched_at < WATCHED_FOR_S
            self.boards_watched(watched)
            period = 1.0 if watched else UNWATCHED_SAMPLE_S
            await asyncio.sleep(max(0.05, period - (time.monotonic() - started)))

    async def take_snapshot(self) -> None:
        """Reads every service's values off its board (see `sandbox.boards`) and its memory
        and CPU from /proc: no service is asked anything. A service that cannot be read
        (between its exit and its restart) keeps its last values, or the next window would
        count its whole lifetime as if it happened in one second; likewise its memory and
        CPU. While no series is added, every snapshot shares one layout (see `Layout`)."""
        pushes, pushing = self.pushes, self.push_lock.locked()
        read = {name: self.board_read(name) for name in SERVICES}
        if not pushing and self.pushes == pushes:  # no push crossed these values
            self.knobs_reconcile()
        pids = {name: self.children[name].pid for name in SERVICES if read[name] is not None}
        self.last_process.update(self.process_figures.read(pids))
        parts: list[tuple[SampleKey, ...]] = []
        values: list[float] = []
        for name in SERVICES:
            fresh = read[name]
            if fresh is not None:
                self.last_read[name] = fresh
            if name in self.last_read:
                keys, kept = self.last_read[name]
                parts.append(keys)
                values += kept
            if name in self.last_process:
                parts.append(PROCESS_KEYS[name])
                values += self.last_process[name]
        # infra helpers' scenarios: instance-crash-loop reads the restarts, the supervisor's own
        names = tuple(self.children)
        if self.restart_keys[0] != names:
            self.restart_keys = (names, restart_keys(names))
        parts.append(self.restart_keys[1])
        values += [float(child.restarts) for child in self.children.values()]
        layout = self.layout
        if (
            layout is None
            or len(layout.parts) != len(parts)
            or any(was is not part for was, part in zip(layout.parts, parts, strict=True))
        ):
            layout = self.layout = Layout([k for part in parts for k in part], tuple(parts))
        self.snapshots.append(Snapshot(time.monotonic(), layout, values))

    def board_read(self, name: str) -> tuple[tuple[SampleKey, ...], list[float]] | None:
        """A service's keys and values off its board, without the process series it keeps
        itself (the supervisor reads those from /proc); None while it cannot be read."""
        child = self.children.get(name)
        # A service between its exit and its restart counts as not answering: its values
        # are carried, and its pid (reaped) is not read.
        if child is None or child.boards is None or not child.running:
            return None
        board = child.boards.metrics
        keys = board.keys()
        if not keys:
            return None
        kept = self.kept_of.get(name)
        if kept is None or kept[0] is not keys:
            positions = [
                at
                for at, key in enumerate(keys)
                if key[0] not in PROCESS_SERIES and not key[0].startswith(HOP_SERIES_PREFIX)
            ]
            kept = self.kept_of[name] = (keys, tuple(keys[at] for at in positions), positions)
        values = board.read()
        return kept[1], [values[at] for at in kept[2]]

    def knobs_reconcile(self) -> None:
        """A service whose knobs differ from what it should run with (an update lost to a
        timeout or to a restart racing a push) gets its whole set again at the next sample."""
        if not self.intended:  # nothing pushed yet: nothing to hold the services to
            return
        for name in SERVICES:
            child = self.children.get(name)
            if child is None or child.boards is None or not child.running:
                continue
            reported = child.boards.metrics.value(FINGERPRINT_KEYS[name])
            if reported is None or int(reported) == self.intended.get(name):
                continue
            self.pushed.pop(name, None)
            self.push_failed = True
            self.knob_resends += 1

    def figures(self) -> dict[str, float | None]:
        """Computed once per sample, however often `/state` is read between two samples."""
        if len(self.snapshots) < 2:
            return {}
        new = self.snapshots[-1]
        if self.figures_of is not None and self.figures_of[0] is new:
            return self.figures_of[1]
        old = next(
            (s for s in self.snapshots if new.at - s.at <= WINDOW_S + 0.5), self.snapshots[0]
        )
        if old is new:
            old = self.snapshots[-2]
        figures = {
            k: (round(v, 4) if not math.isnan(v) else None)
            for k, v in figures_compute(old, new, SERVICES).items()
        }
        self.figures_of = (new, figures)
        return figures

    def scenario_metrics(self) -> dict[str, list[dict[str, object]]]:
        """Each active scenario's own declared metrics (not the RED ones every chart has),
        computed once per sample like the figures."""
        if len(self.snapshots) < 2:
            return {}
        old, new = self.snapshots[-2], self.snapshots[-1]
        active = tuple(self.engine.active_scenarios)
        cached = self.scenario_metrics_of
        if cached is not None and cached[0] is new and cached[1] == active:
            return cached[2]
        readings = {}
        for slug in active:
            specs = [
                (m.name, m.type, m.help)
                for m in SCENARIOS[slug].metrics
                if m.name not in COMMON_METRICS
            ]
            readings[slug] = declared_values(old, new, specs)
        self.scenario_metrics_of = (new, active, readings)
        return readings

    # -- control API
    def watched(self) -> None:
        if time.monotonic() - self.watched_at > WATCHED_FOR_S:
            self.boards_watched(True)
            asyncio.get_running_loop().create_task(self.take_snapshot())
        self.watched_at = time.monotonic()

    def boards_watched(self, watched: bool) -> None:
        """Tells the services (on their boards) whether to keep their figures fresh."""
        for child in self.children.values():
            if child.boards is not None:
                child.boards.metrics.watched = watched

    async def h_health(self, _: web.Request) -> web.Response:
        body = {
            "ready": self.ready,
            "session": self.options.session,
            "services": {n: c.exit_status or "running" for n, c in self.children.items()},
        }
        return web.json_response(body, status=200 if self.ready else 503)

    async def h_state(self, request: web.Request) -> web.Response:
        """The sandbox's state; with `logs_since`, also its log lines after that one (what
        `/logs` answers), so that a watcher reads both with one request a second."""
        self.watched()
        logs: dict[str, Any] = {}
        if "logs_since" in request.query:
            try:
                since = int(request.query["logs_since"])
            except ValueError:
                message = "logs_since must be a whole number (a log line's seq)"
                return error(422, message, parameter="logs_since")
            logs = {"logs": self.logs_since(since)}
        return web.json_response(
            {
                **logs,
                "session": self.options.session,
                "ready": self.ready,
                "started_at": self.started_at,
                "expires_at": self.expires_at,
                "topology": self.topology.describe(),
                **self.engine.state(),
                "load": {"rate_rps": self.engine.effective()["loadgen"]["rate_rps"]},
                "figures": self.figures(),
                "scenario_metrics": self.scenario_metrics(),
                "services": {
                    n: {"pid": c.pid, "restarts": c.restarts, "last_exit": c.exit_status}
                    for n, c in self.children.items()
                },
                "knob_resends": self.knob_resends,
            }
        )

    async def h_metrics(self, _: web.Request) -> web.Response:
        self.watched()

        async def fetch(name: str) -> str:
            url = f"http://{self.topology.host}:{self.topology.service_port(name)}/_metrics"
            try:
                async with self.client.get(url) as response:
                    return await response.text() if response.status == 200 else ""
            except (aiohttp.ClientError, OSError, TimeoutError):
                return ""

        texts = await asyncio.gather(*(fetch(name) for name in self.children))
        own = [
            "# HELP sdlab_scenario_active Scenarios switched on in this sandbox.",
            "# TYPE sdlab_scenario_active gauge",
            *(f'sdlab_scenario_active{{scenario="{s}"}} 1' for s in self.engine.active_scenarios),
            "# HELP sdlab_mitigation_active Mitigations switched on in this sandbox.",
            "# TYPE sdlab_mitigation_active gauge",
            *(
                f'sdlab_mitigation_active{{mitigation="{m}"}} 1'
                for m in self.engine.active_mitigations
            ),
            "# HELP sdlab_service_restarts_total Times the supervisor restarted a service.",
            "# TYPE sdlab_service_restarts_total counter",
            *(
                f'sdlab_service_restarts_total{{service="{n}"}} {c.restarts}'
                for n, c in self.children.items()
            ),
            "# HELP sdlab_sandbox_expires_in_seconds Time left before the sandbox stops itself.",
            "# TYPE sdlab_sandbox_expires_in_seconds gauge",
            f"sdlab_sandbox_expires_in_seconds {max(0.0, self.expires_at - time.time()):.0f}",
        ]
        return web.Response(
            text=merge_exposition([*texts, "\n".join(own)]),
            content_type="text/plain",
            charset="utf-8",
        )

    async def h_catalog(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "scenarios": [s.describe() for s in SCENARIOS.values()],
                "mitigations": [m.describe() for m in MITIGATIONS.values()],
            }
        )

    async def h_logs(self, request: web.Request) -> web.Response:
        since: float
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:  # not a line number: no line is after it
            since = math.inf
        return web.json_response(self.logs_since(since))

    def logs_since(self, since: float) -> list[dict[str, Any]]:
        """The services' newest lines above `since`, read off their log boards, and the
        sandbox's own timeline."""
        lines = [
            line
            for child in self.children.values()
            if child.boards is not None
            for line in child.boards.logs.since(since)
        ]
        events = [
            {"time": e.at, "level": "info", "service": "sandbox", "message": e.what, **e.detail}
            for e in self.engine.events
        ]
        # The newest service lines, and every timeline event still kept (they are few).
        lines = sorted(lines, key=lambda line: line.get("time", 0))[-200:]
        return sorted([*lines, *events[-50:]], key=lambda line: line.get("time", 0))

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPUnprocessableEntity(
                text='{"message": "the body must be a JSON object of parameters", "extra": {}}',
                content_type="application/json",
            ) from None
        if not isinstance(body, dict):
            raise web.HTTPUnprocessableEntity(
                text='{"message": "the body must be a JSON object of parameters", "extra": {}}',
                content_type="application/json",
            )
        return body

    async def _switch(self, request: web.Request, action: Any, kind: str, on: bool) -> web.Response:
        slug = request.match_info["slug"]
        body = await self._json_body(request) if on else {}
        try:
            result = action(slug, body) if on else action(slug)
        except UnknownSlug as exc:
            return error(404, exc.message, **{kind: slug})
        except ParameterError as exc:
            return error(422, exc.message, parameter=exc.parameter, **{kind: slug})
        await self.push()
        if on:
            return web.json_response({kind: slug, "parameters": result, "active": True})
        return web.json_response({kind: slug, "active": False, "was_active": result})

    async def h_scenario_enable(self, request: web.Request) -> web.Response:
        return await self._switch(request, self.engine.scenario_enable, "scenario", True)

    async def h_scenario_disable(self, request: web.Request) -> web.Response:
        return await self._switch(request, self.engine.scenario_disable, "scenario", False)

    async def h_mitigation_enable(self, request: web.Request) -> web.Response:
        return await self._switch(request, self.engine.mitigation_enable, "mitigation", True)

    async def h_mitigation_disable(self, request: web.Request) -> web.Response:
        return await self._switch(request, self.engine.mitigation_disable, "mitigation", False)

    async def h_load(self, request: web.Request) -> web.Response:
        """{"rate_rps": N, "read_ratio": r, "search_ratio": r, "hot_key_ratio": r}, any subset."""
        body = await self._json_body(request)
        bounds = {
            "rate_rps": MAX_LOAD_RPS,
            "read_ratio": 1.0,
            "search_ratio": 1.0,
            "hot_key_ratio": 1.0,
        }
        unknown = sorted(set(body) - set(bounds))
        if unknown or not body:
            return error(
                422, f"load takes {', '.join(bounds)}", parameter=(unknown or ["rate_rps"])[0]
            )
        for name, value in body.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= bounds[name]
            ):
                return error(
                    422, f"{name} must be a number between 0 and {bounds[name]:g}", parameter=name
                )
        self.engine.set_base({"loadgen": {k: float(v) for k, v in body.items()}})
        await self.push()
        loadgen = self.engine.effective()["loadgen"]
        return web.json_response({k: loadgen[k] for k in bounds})

    async def h_stop(self, _: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.05, self.stopping.set)
        return web.json_response({"stopping": True}, status=202)
