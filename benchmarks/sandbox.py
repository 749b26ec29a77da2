"""Sandbox figures: start latency, memory of a whole sandbox, and density.

    .venv/bin/python benchmarks/sandbox.py [--starts 30] [--max-sandboxes 100] [--skip-density]
    .venv/bin/python benchmarks/sandbox.py --cpu

- start latency: from LocalBackend.start() to the first good /metrics, median and p95
  over `--starts` sandboxes started one after another (each stopped before the next);
- memory of a whole sandbox under 5 requests/s: its cgroup's charge, and the sum of its
  processes' PSS (shared pages counted in proportion);
- density: sandboxes started one by one, each with 5 requests/s of load and watched as
  the relay watches a running lab (its /state and new /logs read once a second, which
  makes its supervisor sample every service every second), until starts take over 1 s,
  memory runs short, or `--max-sandboxes` run; the count reached. A start over 1 s is
  checked: after 5 s, three more sandboxes are started (and stopped) one at a time, and
  only if their median is over 1 s too does the count stop there. One slow start is
  often a start that met the previous one's first seconds, not the machine's start
  latency; how many were passed over is printed. The count also stops when about ten
  sampled sandboxes (read every ten starts and at each slow start) no longer serve 95%
  of their users: past its knee the machine does not degrade gently (the users' timeouts
  and retries multiply the load, and every sandbox stops serving). `--unwatched` leaves
  them unread (they then sample every 15 s: a lower bound production never sees);
- `--cpu` only: where a running, watched sandbox's CPU goes, in ms per second by process
  (density is bound by CPU: 100 sandboxes on two cores leave about 17 ms/s each); then
  how often its processes wake, and what one wake-up costs on this machine (a bare uvloop
  server answering requests sent back to back, then 50 ms apart). Where a wake-up costs
  far more than the work it does, fewer wake-ups is what lowers a sandbox's CPU.

Targets (the sandbox issue): median start < 300 ms, p95 < 600 ms, a whole sandbox
< 120 MiB, 100 concurrent sandboxes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.backends.base import SandboxHandle, SandboxSpec
from sandbox.backends.local import LocalBackend, host_pids
from sandbox.client import SandboxClient

LOAD_RPS = 5.0
START_LIMIT_S = 1.0
PROBES = 3  # starts timed again, one at a time, after a start over the limit
SETTLE_S = 5.0
FIRST_ANSWER_S = 30.0
SERVED_MIN = 0.95  # below this share of users served, the sandboxes have stopped working
MEMORY_RESERVE = 2 * 2**30


def started(
    backend: LocalBackend, session: str, load_rps: float | None = None
) -> tuple[SandboxHandle, float]:
    began = time.perf_counter()
    handle = backend.start(SandboxSpec(session_id=session, load_rps=load_rps))
    # A slow first answer is a slow start, measured as such, not a failure.
    metrics = SandboxClient(handle.address, timeout=FIRST_ANSWER_S).metrics()
    if "sdlab_requests" not in metrics:
        raise RuntimeError(f"{session}: /metrics answered without the RED metrics")
    return handle, time.perf_counter() - began


def answer(read: Callable[[SandboxClient], Any], handle: SandboxHandle) -> Any:
    """What `read` gets from a sandbox, or None if it does not answer in time (overloaded:
    counted as unhealthy, or as serving none of its users)."""
    try:
        return read(SandboxClient(handle.address, timeout=FIRST_ANSWER_S))
    except OSError:
        return None


def serving(handles: list[SandboxHandle]) -> float:
    """The lowest share of users served, over about ten of the running sandboxes. One that
    does not answer counts as serving none; one too new to have figures is not counted."""
    ratios = []
    for handle in handles[:: max(1, len(handles) // 10)]:
        figures = answer(lambda c: c.figures(), handle)
        if figures is None:
            ratios.append(0.0)
        elif figures.get("users.success_ratio") is not None:
            ratios.append(float(figures["users.success_ratio"]))
    return min(ratios, default=1.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_times() -> tuple[int, int, int]:
    """(busy, steal, total) ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return total - idle - steal, steal, total


def cpu_use_since(before: tuple[int, int, int]) -> str:
    """Busy and stolen shares of the CPUs since `before`: the load average (a minute's
    mean of runnable tasks) reads low while a start waits for a core at 80% use."""
    busy, steal, total = (now - then for now, then in zip(cpu_times(), before, strict=True))
    return f"CPU {100 * busy / max(1, total):.0f}% busy, {100 * steal / max(1, total):.0f}% stolen"


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def sandbox_pss(handle: SandboxHandle) -> int:
    total = 0
    for pid in host_pids(handle).values():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def cgroup_charge(handle: SandboxHandle) -> int | None:
    record = handle.details.get("cgroup") or {}
    for directory in record.get("dirs", []):
        for name in ("memory.usage_in_bytes", "memory.current"):
            path = Path(directory) / name
            if path.exists():
                return int(path.read_text())
    return None


def measure_starts(backend: LocalBackend, count: int) -> None:
    backend.stop(started(backend, "bench-warm")[0])  # builds the database template once
    times = []
    for n in range(count):
        handle, seconds = started(backend, f"bench-start-{n}")
        times.append(seconds)
        backend.stop(handle)
    print(
        f"start latency (spawn to first good /metrics), n={count}: median "
        f"{statistics.median(times) * 1000:.0f} ms, p95 {percentile(times, 0.95) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms  (targets: median < 300 ms, p95 < 600 ms)",
        flush=True,
    )


def measure_memory(backend: LocalBackend) -> None:
    handle, _ = started(backend, "bench-memory", load_rps=LOAD_RPS)
    try:
        time.sleep(15)
        pss = sandbox_pss(handle) / 2**20
        charge = cgroup_charge(handle)
        charged = f"{charge / 2**20:.0f} MiB" if charge is not None else "n/a (no cgroup)"
        print(
            f"memory of a whole sandbox at {LOAD_RPS:g} req/s: PSS of its processes {pss:.0f} MiB, "
            f"cgroup charge {charged}  (target < 120 MiB)",
            flush=True,
        )
    finally:
        backend.stop(handle)


def watch(handles: list[SandboxHandle], stop: threading.Event) -> None:
    """What the relay does for every running lab: once a second, its state and new logs."""
    cursors: dict[str, int] = {}
    while not stop.is_set():
        began = time.monotonic()
        for handle in list(handles):
            client = SandboxClient(handle.address)
            try:
                logs = client.state(logs_since=cursors.get(handle.sandbox_id, 0))["logs"]
            except (OSError, ValueError):
                continue  # a sandbox too busy to answer this second: read it the next
            if logs:
                cursors[handle.sandbox_id] = max(int(line.get("seq", 0)) for line in logs)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))


def measure_density(backend: LocalBackend, limit: int, watched: bool) -> None:
    handles: list[SandboxHandle] = []
    last = 0.0
    slow_starts = 0  # single starts over the limit that the starts after them did not confirm
    reason = f"reached {limit}"
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(handles, stop), daemon=True)
    if watched:
        watcher.start()
    window = cpu_times()
    try:
        while len(handles) < limit:
            if mem_available() < MEMORY_RESERVE:
                reason = "memory ran short"
                break
            handle, last = started(backend, f"bench-dense-{len(handles)}", load_rps=LOAD_RPS)
            handles.append(handle)
            if len(handles) % 10 == 0:
                served = serving(handles)
                print(
                    f"  {len(handles)} sandboxes running, last start {last * 1000:.0f} ms, "
                    f"{mem_available() / 2**30:.1f} GiB available, load {os.getloadavg()[0]:.1f}, "
                    f"{cpu_use_since(window)} over the last ten, sampled success ratio min "
                    f"{served:.2f}",
                    flush=True,
                )
                window = cpu_times()
                if served < SERVED_MIN:
                    reason = f"sandboxes stopped serving their users (success {served:.2f})"
                    break
            if last > START_LIMIT_S:
                # One slow start is not yet a start latency: let the machine settle, then
                # time a few more starts at this density (each stopped again).
                time.sleep(SETTLE_S)
                probes = []
                for n in range(PROBES):
                    probe, seconds = started(backend, f"bench-probe-{n}", load_rps=LOAD_RPS)
                    backend.stop(probe)
                    probes.append(seconds)
                middle = statistics.median(probes)
                served = serving(handles)
                print(
                    f"  a start took {last:.2f} s with {len(handles)} running; {PROBES} more "
                    f"took {', '.join(f'{t:.2f}' for t in probes)} s; sampled success ratio "
                    f"min {served:.2f}",
                    flush=True,
                )
                if middle > START_LIMIT_S:
                    reason = f"starts took over 1 s: {last:.2f} s, then a median {middle:.2f} s"
                    break
                if served < SERVED_MIN:
                    reason = f"sandboxes stopped serving their users (success {served:.2f})"
                    break
                slow_starts += 1
        window = cpu_times()
        time.sleep(10)
        settled = cpu_use_since(window)
        healthy = sum(1 for h in handles if answer(lambda c: c.health().get("ready"), h))
        served = serving(handles)
        print(
            f"density at {LOAD_RPS:g} req/s each, "
            f"{'watched once a second' if watched else 'unwatched'}: "
            f"{len(handles)} sandboxes ({reason}); "
            f"{healthy} healthy; last start {last * 1000:.0f} ms; {slow_starts} slow start(s) "
            "passed over; sampled success ratio "
            f"min {served:.2f}; load average {os.getloadavg()[0]:.1f}; {settled} "
            "over 10 s with them all running  "
            "(target 100 with starts < 1 s)",
            flush=True,
        )
    finally:
        stop.set()
        if watched:
            watcher.join(timeout=30)
        for handle in handles:
            backend.stop(handle)


def task_cpu_ns(pid: int) -> int:
    """CPU time a process has run, every thread summed, from schedstat (exact, where the
    tick-based utime/stime miss short wakeups)."""
    return task_schedstat(pid)[0]


def task_schedstat(pid: int) -> tuple[int, int]:
    """(ns run, times scheduled in) of a process, every thread summed: each time a
    sleeping thread is scheduled in is a wake-up."""
    ran = slices = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0, 0
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text().split()
            ran, slices = ran + int(fields[0]), slices + int(fields[2])
        except (OSError, ValueError, IndexError):
            continue
    return ran, slices


# A server that does nothing but answer: what one wake-up costs on this machine, with none
# of the sandbox's own code.
BARE_SERVER = """
import asyncio, sys, uvloop
class Answer(asyncio.Protocol):
    def connection_made(self, transport): self.transport = transport
    def data_received(self, data):
        self.transport.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)
uvloop.run(main())
"""


def bare_wakeup_us(requests: int = 100, gap_s: float = 0.05) -> tuple[float, float]:
    """CPU per request of BARE_SERVER, requests sent back to back (its code stays warm in
    the processor's caches) and `gap_s` apart (each one a fresh wake-up): (warm, cold) µs."""
    server = subprocess.Popen([sys.executable, "-c", BARE_SERVER], stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline()) if server.stdout is not None else 0
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            costs = []
            for gap, count in ((0.0, requests * 10), (gap_s, requests)):
                before = task_cpu_ns(server.pid)
                for _ in range(count):
                    conn.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                    if not conn.recv(4096):
                        raise RuntimeError("the bare server closed the connection")
                    time.sleep(gap)
                costs.append((task_cpu_ns(server.pid) - before) / 1e3 / count)
        return costs[0], costs[1]
    finally:
        server.terminate()
        server.wait(timeout=10)


def process_names(handle: SandboxHandle) -> dict[int, str]:
    """Host pid -> what the process is: a service's name, or the supervisor."""
    inside = host_pids(handle)
    names = {
        inside[int(s["pid"])]: name
        for name, s in SandboxClient(handle.address).state()["services"].items()
        if s.get("pid") and int(s["pid"]) in inside
    }
    for pid in inside.values():
        names.setdefault(pid, "supervisor" if pid == min(inside.values()) else "other")
    return names


def measure_cpu(backend: LocalBackend, count: int, seconds: float) -> None:
    """Where a running sandbox's CPU goes: `count` sandboxes at 5 req/s, watched, then each
    process's CPU over `seconds`, as ms per second per sandbox by process."""
    handles = [started(backend, f"bench-cpu-{n}", load_rps=LOAD_RPS)[0] for n in range(count)]
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(handles, stop), daemon=True)
    watcher.start()
    try:
        time.sleep(5)  # past the start's own work
        names = {pid: name for h in handles for pid, name in process_names(h).items()}
        me = os.getpid()
        before = {pid: task_schedstat(pid) for pid in [*names, me]}
        began = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - began
        spent: dict[str, float] = {}
        woke: dict[str, int] = {}
        for pid, name in names.items():
            ran, slices = task_schedstat(pid)
            spent[name] = spent.get(name, 0.0) + (ran - before[pid][0]) / 1e6
            woke[name] = woke.get(name, 0) + slices - before[pid][1]
        watcher_ms = (task_cpu_ns(me) - before[me][0]) / 1e6 / elapsed / count
        per = {name: ms / elapsed / count for name, ms in spent.items()}
        print(
            f"CPU per running sandbox at {LOAD_RPS:g} req/s, watched ({count} sandboxes, "
            f"{elapsed:.0f} s): {sum(per.values()):.1f} ms/s  "
            f"(target about 17 ms/s for 100 on two cores); the watcher {watcher_ms:.1f} ms/s",
            flush=True,
        )
        for name, ms in sorted(per.items(), key=lambda item: -item[1]):
            wakes = woke[name] / elapsed / count
            print(
                f"  {name:<14} {ms:5.1f} ms/s  {wakes:5.1f} wake-ups/s, "
                f"{ms * 1000 / max(wakes, 1e-9):4.0f} µs each",
                flush=True,
            )
        wakeups = sum(woke.values()) / elapsed / count
        warm, cold = bare_wakeup_us()
        floor = wakeups * cold / 1000
        print(
            f"wake-ups per sandbox: {wakeups:.0f}/s; a bare uvloop server's answer costs "
            f"{warm:.0f} µs of CPU warm, {cold:.0f} µs woken from sleep: at that cost the "
            f"wake-ups alone take {floor:.1f} ms/s per sandbox, room for {2000 / floor:.0f} "
            "on two cores",
            flush=True,
        )
    finally:
        stop.set()
        watcher.join(timeout=30)
        for handle in handles:
            backend.stop(handle)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--max-sandboxes", type=int, default=100)
    parser.add_argument("--skip-density", action="store_true")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="only where a running sandbox's CPU goes, by process (3 sandboxes, 30 s)",
    )
    parser.add_argument(
        "--unwatched", action="store_true", help="density without a reader of each sandbox"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sdlb-", dir="/tmp"))
    backend = LocalBackend(root=root)
    try:
        if args.cpu:
            measure_cpu(backend, count=3, seconds=30)
            return
        measure_starts(backend, args.starts)
        measure_memory(backend)
        if not args.skip_density:
            measure_density(backend, args.max_sandboxes, watched=not args.unwatched)
    finally:
        for handle in backend.list():
            backend.stop(handle)
        backend.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
