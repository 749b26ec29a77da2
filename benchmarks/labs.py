"""Live-lab figures: click to first frame, relay reads per sandbox, frame delay to viewers.

    .venv/bin/python benchmarks/labs.py [--starts 10] [--ticks 10] [--sessions 50]
                                        [--viewers-per-session 20] [--frames 10]
                                        [--viewer-processes 2]

Everything is its own: a scratch database `sdlab_bench_labs` next to DATABASE_URL's
(created, migrated and dropped here), Redis (REDIS_URL, else redis://127.0.0.1:6379/6)
under key prefixes and a Celery queue named after this process, a sandbox directory
under /tmp, and one uvicorn, one Celery worker, one relay and `--viewer-processes` viewer
processes, each stopped by its PID.

- click to first frame, cold: from just before `lab_session_start` (what the Start button
  calls) to the first {"type": "frame"} message on the lab WebSocket, opened right after
  by the learner; median and p95 over `--starts` sessions one after another, each stopped
  before the next. Every session boots its own sandbox (there is no warm pool); one
  untimed start first builds the shop's database template and the worker's fork server.
  Also shown: the first frame with figures in it (the sandbox needs two samples), and the
  same with a warm pool. `--starts 0` leaves this part out;
- relay reads: the relay's reads per running sandbox per tick (a tick a second) over
  `--ticks` ticks, with 1 viewer and with 50 (and with 50 viewers and two relays); these
  viewers run in this process. The last frame read is the fan-out's frame template;
- frame delay: `--sessions` lab sessions (requested, never provisioned: viewers need only
  frames) with `--viewers-per-session` WebSocket viewers each, all on ONE uvicorn process.
  The viewers run in `--viewer-processes` processes of their own (benchmarks/lab_viewers.py),
  not in this one: each has every viewer of its share of the sessions, connects them on
  loopback, each past its hello (25 at a time in all: 25 // N in each of N processes), and
  notes the time each message is read, before parsing it. This process sends the frames:
  once a second, as the relay does (each session at its own phase of the tick, spread over
  its first 0.75 s), a relay-sized frame to each session's group, its "at" the time just
  before `group_send`. The delay is the receive time minus the frame's "at" (one clock: one
  machine): p50, p99 and max over every viewer, how many frames arrived of those expected,
  and how many viewers the server closed on its own. A frame waiting in a viewer's socket
  while that viewer's event loop is busy still counts in the delay, so each viewer
  process also times an asyncio.sleep(0.05) while frames flow; its lateness (p99, max) is
  printed next to that process's own delay p99: delay well beyond it is not the viewer's.
  Also printed: the CPU of uvicorn, of this process and of each viewer process while
  frames flowed. The viewers close as they connect, 25 at a time in all.

Targets (the live-labs issue): first frame p95 < 1 s cold; exactly one read per sandbox
per tick; frame delay p99 < 250 ms for 1,000 viewers of 50 sessions on one ASGI process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_sync_connect
from websockets.typing import Origin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lab_viewers import (
    LAG_TIMER_S,
    ROOT,
    WAIT_S,
    Pair,
    ViewerProcess,
    Viewing,
    frames_into,
    lab_url,
    viewer_processes,
    viewers_close,
    viewers_open,
)

if TYPE_CHECKING:
    from apps.accounts.models import User
    from apps.scenarios.models import LabSession
    from apps.tenants.models import Organisation

BENCH_DB = "sdlab_bench_labs"
TAG = f"sdlab-bench-labs-{os.getpid()}"
SLUG = "bench-labs"
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 (bench accounts in a scratch database)
LATE_FRAMES_S = 3.0


# ------------------------------------------------------------------ scratch resources
def scratch_database_url() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sdlab")
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres")).replace("postgres://", "postgresql://", 1)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}")), admin


def database_recreate(admin_url: str, *, create: bool = True) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def environment(database_url: str, redis_url: str, root: Path) -> dict[str, str]:
    """What this process and every process it starts run with."""
    return {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_QUEUE": TAG,
        "CHANNELS_PREFIX": f"{TAG}:channels",
        "CACHE_KEY_PREFIX": TAG,
        "SANDBOX_BACKEND": "local",
        "SANDBOX_ROOT": str(root),
        "OTEL_TRACES_EXPORTER": "none",
    }


def fd_limit_raise(wanted: int = 8192) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def redis_forget(redis_url: str) -> None:
    """Deletes this run's keys (channel layer, cache, relay registry, its Celery queue)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for pattern in (f"{TAG}*", f"_kombu.*{TAG}*"):
        for key in client.scan_iter(match=pattern, count=500):
            client.delete(key)


def sandboxes_stop(root: Path) -> int:
    from sandbox.backends.local import LocalBackend

    backend = LocalBackend(root=root)
    handles = backend.list()
    for handle in handles:
        backend.stop(handle)
    backend.close()
    return len(handles)


def processes_under(root: Path) -> list[int]:
    """PIDs whose command line names the sandbox directory (there should be none left)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if str(root).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# ------------------------------------------------------------------ people and sessions
def host() -> str:
    from django.conf import settings

    return f"{SLUG}.{settings.BASE_DOMAIN}"


def people(learners: int) -> tuple[Organisation, list[User], User]:
    from apps.accounts.models import Role
    from apps.accounts.services import membership_set, user_create
    from apps.tenants.models import Plan
    from apps.tenants.services import organisation_create

    # A plan big enough for every session at once (plans are reference data: no service).
    plan = Plan.objects.create(
        slug=SLUG, name="Bench labs", seats=learners + 10, sandbox_quota=learners + 5
    )
    organisation = organisation_create(name="Bench Labs", slug=SLUG, plan=plan)

    def member(role: str, n: int) -> User:
        user = user_create(email=f"{role}-{n}@bench.test", password=PASSWORD, email_verified=True)
        membership_set(user=user, organisation=organisation, role=role)
        return user

    return (
        organisation,
        [member(Role.LEARNER, n) for n in range(learners)],
        member(Role.INSTRUCTOR, 0),
    )


def cookie_for(user: User) -> str:
    """A session cookie for the organisation's site, as a login sets it."""
    from django.conf import settings
    from django.test import Client

    client = Client(HTTP_HOST=host())
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def lab_started(organisation: Organisation, learner: User, scenario_set: str = "bench") -> int:
    from django_tenants.utils import tenant_context

    from apps.scenarios.services import lab_session_start

    with tenant_context(organisation):
        return lab_session_start(
            organisation=organisation, learner=learner, scenario_set=scenario_set
        ).pk


def lab_in(organisation: Organisation, session_id: int, states: tuple[str, ...]) -> LabSession:
    """Waits (bounded) until the session is in one of `states`; returns it."""
    from django_tenants.utils import tenant_context

    from apps.scenarios.models import LabSession
    from tests.support.servers import wait_for

    def found() -> LabSession | None:
        with tenant_context(organisation):
            return LabSession.objects.filter(pk=session_id, state__in=states).first()

    # wait_for returns the first true value, never None
    return cast("LabSession", wait_for(found, f"lab {session_id} to be {' or '.join(states)}"))


def lab_stopped(organisation: Organisation, session_id: int) -> LabSession:
    from django_tenants.utils import tenant_context

    from apps.scenarios.models import FINISHED_STATES
    from apps.scenarios.services import lab_session_stop

    with tenant_context(organisation):
        lab_session_stop(session_id=session_id)
    return lab_in(organisation, session_id, tuple(FINISHED_STATES))


# ------------------------------------------------------------------ viewers
async def layer_close(layer: Any) -> None:
    """Closes the channel layer's connections of this event loop (before it ends)."""
    close = getattr(layer, "close_pools", None)  # channels_redis's core layer has it
    if close is not None:
        await close()


def dropped(viewing: Viewing) -> str:
    return f"; {viewing.dropped} viewers closed by the server" if viewing.dropped else ""


# ------------------------------------------------------------------ 1. click to first frame
def first_frame(
    port: int, organisation: Organisation, learner: User, cookie: str, scenario_set: str = "bench"
) -> tuple[float | None, float | None, LabSession, float]:
    """Seconds from start to the first frame and to the first frame with figures."""
    clicked_at = time.time()
    began = time.perf_counter()
    session_id = lab_started(organisation, learner, scenario_set)
    first = figured = None
    try:
        with ws_sync_connect(
            lab_url(host(), port, session_id),
            sock=socket.create_connection(("127.0.0.1", port), timeout=WAIT_S),
            origin=Origin(f"http://{host()}:{port}"),
            additional_headers={"Cookie": cookie},
            open_timeout=WAIT_S,
        ) as ws:
            deadline = began + WAIT_S
            while figured is None and time.perf_counter() < deadline:
                try:
                    message = json.loads(ws.recv(timeout=deadline - time.perf_counter()))
                except (TimeoutError, ConnectionClosed):  # no frame: counted, not timed
                    break
                if message.get("type") == "state" and message.get("state") == "failed":
                    raise RuntimeError(f"lab {session_id} failed: {message['failure_reason']}")
                if message.get("type") == "frame":
                    now = time.perf_counter() - began
                    first = now if first is None else first
                    if any(v is not None for v in (message.get("figures") or {}).values()):
                        figured = now
    finally:
        ended = lab_stopped(organisation, session_id)
    return first, figured, ended, clicked_at


def measure_first_frames(
    port: int, organisation: Organisation, learner: User, cookie: str, count: int
) -> None:
    warm, _, _, _ = first_frame(port, organisation, learner, cookie)
    firsts: list[float] = []
    figured: list[float] = []
    queued: list[float] = []
    booting: list[float] = []
    ticking: list[float] = []
    for _ in range(count):
        first, with_figures, session, clicked_at = first_frame(port, organisation, learner, cookie)
        if first is None or session.started_at is None or session.ready_at is None:
            print(f"  lab {session.pk}: no frame within {WAIT_S:g} s ({session.state})")
            continue
        firsts.append(first)
        if with_figures is not None:
            figured.append(with_figures)
        queued.append(session.started_at.timestamp() - clicked_at)
        booting.append((session.ready_at - session.started_at).total_seconds())
        ticking.append(clicked_at + first - session.ready_at.timestamp())
    if not firsts:
        print("click to first frame, cold: no session produced a frame")
        return
    print(
        f"click to first frame, cold (lab_session_start to the first frame message), "
        f"n={len(firsts)} of {count}: median {ms(statistics.median(firsts))}, "
        f"p95 {ms(percentile(firsts, 0.95))}, max {ms(max(firsts))}  (target p95 < 1000 ms)",
        flush=True,
    )
    print(
        f"  of which (medians): start to the worker's pick-up {ms(statistics.median(queued))}, "
        f"sandbox boot {ms(statistics.median(booting))}, running to first frame "
        f"{ms(statistics.median(ticking))} (max {ms(max(ticking))}: the relay ticks on whole "
        f"seconds); the untimed first start after the worker began took {ms(warm or 0.0)}",
        flush=True,
    )
    if figured:
        print(
            f"click to first frame with figures, cold, n={len(figured)}: median "
            f"{ms(statistics.median(figured))}, p95 {ms(percentile(figured, 0.95))}",
            flush=True,
        )
    measure_warm_first_frames(port, organisation, learner, cookie, count)


def measure_warm_first_frames(
    port: int, organisation: Organisation, learner: User, cookie: str, count: int
) -> None:
    """As above, with a ready sandbox waiting in the warm pool before each start."""
    from django.conf import settings

    from apps.scenarios.pool import pool_fill

    settings.LAB_WARM_POOL = "bench-warm=1"
    firsts: list[float] = []
    for _ in range(count):
        pool_fill()  # untimed: the pool is kept full between starts by beat
        first, _, session, _ = first_frame(port, organisation, learner, cookie, "bench-warm")
        if first is not None:
            firsts.append(first)
        else:
            print(f"  warm lab {session.pk}: no frame within {WAIT_S:g} s ({session.state})")
    if firsts:
        print(
            f"click to first frame, warm pool, n={len(firsts)} of {count}: median "
            f"{ms(statistics.median(firsts))}, p95 {ms(percentile(firsts, 0.95))}  "
            "(target p95 < 200 ms)",
            flush=True,
        )


# ------------------------------------------------------------------ 2. relay reads
async def relay_reads(
    port: int, pairs: list[tuple[int, str]], ticks: int, relays: int
) -> tuple[int, int, Viewing]:
    """(reads by the relays, sandboxes registered, what the viewers saw)."""
    from channels.layers import get_channel_layer

    from apps.scenarios.relay import Relay

    sockets = await viewers_open(host(), port, pairs)
    viewing = Viewing(since=time.time())
    readers = [asyncio.create_task(frames_into(ws, viewing)) for ws in sockets]
    team = [Relay(name=f"{TAG}-relay-{n}") for n in range(relays)]
    sandboxes = len(team[0].running())
    for relay in team:  # already running: read on ticks only (a new one gets one read at once)
        relay.seen |= set(relay.running())
    await asyncio.gather(*(relay.run(ticks=ticks) for relay in team))
    await asyncio.sleep(0.5)  # the last tick's frames on their way
    await viewers_close(sockets, readers, viewing)
    await layer_close(get_channel_layer())
    return sum(relay.reads for relay in team), sandboxes, viewing


def measure_relay_reads(
    port: int,
    organisation: Organisation,
    learner: User,
    cookies: tuple[str, str],
    ticks: int,
) -> dict[str, Any] | None:
    """Returns the relay's last frame, for the fan-out to send frames of a real size."""
    from apps.scenarios.events import last_frame
    from apps.scenarios.models import LabSessionState

    session_id = lab_started(organisation, learner)
    try:
        lab_in(organisation, session_id, (LabSessionState.RUNNING,))
        learner_cookie, instructor_cookie = cookies
        for viewers, relays in ((1, 1), (50, 1), (50, 2)):
            pairs = [(session_id, learner_cookie)] + [(session_id, instructor_cookie)] * (
                viewers - 1
            )
            reads, sandboxes, viewing = asyncio.run(relay_reads(port, pairs, ticks, relays))
            per = reads / max(1, sandboxes) / ticks
            print(
                f"relay reads per sandbox per tick (1 tick/s), {viewers} viewer"
                f"{'s' if viewers > 1 else ''}, {relays} relay{'s' if relays > 1 else ''}: "
                f"{per:.2f}  ({reads} reads of {sandboxes} registered sandbox"
                f"{'es' if sandboxes != 1 else ''} in {ticks} ticks; viewers received "
                f"{len(viewing.delays)} frames of {viewers * ticks}{dropped(viewing)})  "
                "(target exactly 1)",
                flush=True,
            )
        return last_frame(organisation.schema_name, session_id)
    finally:
        lab_stopped(organisation, session_id)


# ------------------------------------------------------------------ 3. frame fan-out
@dataclass
class FanOut:
    viewing: Viewing  # what every viewer process saw, together
    viewers: list[ViewerProcess]
    connecting_s: float
    flowing: tuple[float, float]  # from the first tick to the last one's end (time.time())
    server_cpu: float | None  # the ASGI process's CPU while frames flowed, in cores
    sender_cpu: float  # this process's (the sender's)


def asgi_pid(port: int) -> int | None:
    """The uvicorn process serving `port` (started here by `asgi_server`)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if b"uvicorn" in argv and str(port).encode() in argv:
                    return int(entry.name)
    return None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def shares_of(pairs: list[Pair], processes: int) -> list[list[Pair]]:
    """The viewers split over `processes` viewer processes, session by session: each
    process has every viewer of its sessions."""
    sessions = list(dict.fromkeys(session_id for session_id, _ in pairs))
    count = max(1, min(processes, len(sessions)))
    owner = {session_id: n % count for n, session_id in enumerate(sessions)}
    shares: list[list[Pair]] = [[] for _ in range(count)]
    for pair in pairs:
        shares[owner[pair[0]]].append(pair)
    return shares


async def fan_out(
    port: int,
    pairs: list[Pair],
    schema: str,
    session_ids: list[int],
    frames: int,
    template: dict[str, Any],
    processes: int,
) -> FanOut:
    from channels.layers import get_channel_layer

    from apps.scenarios.events import lab_session_group
    from apps.scenarios.relay import phase

    layer = get_channel_layer()
    server = asgi_pid(port)
    began = time.perf_counter()
    bound = 1 + frames + LATE_FRAMES_S + WAIT_S  # how long a viewer process waits for "stop"
    async with viewer_processes(host(), port, shares_of(pairs, processes), bound) as viewers:
        connecting = time.perf_counter() - began
        since = time.time()
        await asyncio.sleep(max(0.0, int(time.time()) + 1 - time.time()))
        start = time.time()
        server_before = cpu_seconds(server) if server else 0.0
        sender_before = time.process_time()
        viewers_before = [cpu_seconds(viewer.pid) for viewer in viewers]
        by_phase = sorted(session_ids, key=lambda s: phase(f"{schema}:{s}"))
        for n in range(frames):
            for session_id in by_phase:  # as the relay sends a tick's frames: each at its phase
                due = start + n + phase(f"{schema}:{session_id}")
                await asyncio.sleep(max(0.0, due - time.time()))
                frame = {**template, "session": session_id, "at": time.time()}
                await layer.group_send(
                    lab_session_group(schema, session_id), {"type": "lab.frame", "frame": frame}
                )
        await asyncio.sleep(max(0.0, start + frames - time.time()))
        end = time.time()
        server_cpu = (cpu_seconds(server) - server_before) / (end - start) if server else None
        sender_cpu = (time.process_time() - sender_before) / (end - start)
        for viewer, before in zip(viewers, viewers_before, strict=True):
            viewer.cpu = (cpu_seconds(viewer.pid) - before) / (end - start)
        await asyncio.sleep(LATE_FRAMES_S)
        await asyncio.gather(*(viewer.finish(since) for viewer in viewers))
    await layer_close(layer)
    viewing = Viewing(
        since=since,
        seen=[seen for viewer in viewers for seen in viewer.viewing.seen],
        dropped=sum(viewer.viewing.dropped for viewer in viewers),
    )
    return FanOut(viewing, viewers, connecting, (start, end), server_cpu, sender_cpu)


def measure_fan_out(
    port: int,
    organisation: Organisation,
    learners: list[User],
    cookies: dict[int, str],
    instructor_cookie: str,
    per_session: int,
    frames: int,
    template: dict[str, Any],
    processes: int,
) -> None:
    session_ids = [lab_started(organisation, learner) for learner in learners]
    try:
        pairs = []
        for learner, session_id in zip(learners, session_ids, strict=True):
            pairs.append((session_id, cookies[learner.pk]))
            pairs.extend([(session_id, instructor_cookie)] * (per_session - 1))
        result = asyncio.run(
            fan_out(port, pairs, organisation.schema_name, session_ids, frames, template, processes)
        )
    finally:
        for session_id in session_ids:
            lab_stopped(organisation, session_id)
    expected = len(pairs) * frames
    size = len(json.dumps({**template, "at": time.time()}))
    viewing = result.viewing
    delays = viewing.delays
    if not delays:
        print(f"frame delay: no frame of {expected} reached a viewer{dropped(viewing)}")
        return
    print(
        f"frame delay, {len(pairs)} WebSocket viewers of {len(session_ids)} sessions on one "
        f"uvicorn process ({size}-byte frames, one a second each for {frames} s): "
        f"p50 {ms(statistics.median(delays))}, p99 {ms(percentile(delays, 0.99))}, "
        f"max {ms(max(delays))}; received {len(delays)} of {expected}{dropped(viewing)}  "
        "(target p99 < 250 ms)",
        flush=True,
    )
    server = f"{result.server_cpu:.0%}" if result.server_cpu is not None else "n/a"
    viewers_cpu = " + ".join(f"{viewer.cpu or 0.0:.0%}" for viewer in result.viewers)
    print(
        f"  while frames flowed: uvicorn used {server} of a core, the sender (this process) "
        f"{result.sender_cpu:.0%}, the viewers ({len(result.viewers)} process"
        f"{'es' if len(result.viewers) > 1 else ''}) "
        f"{viewers_cpu}; connecting the {len(pairs)} viewers took {result.connecting_s:.1f} s",
        flush=True,
    )
    print(viewers_behind(result), flush=True)


def viewers_behind(result: FanOut) -> str:
    """How far behind each viewer process itself was: its event loop's lag while frames
    flowed (a frame waiting in its socket waits as long), next to the delay it measured."""
    start, end = result.flowing
    parts = []
    for n, viewer in enumerate(result.viewers, 1):
        lags = [late for when, late in viewer.lags if start <= when <= end]
        delays = viewer.viewing.delays
        sessions = len({session_id for session_id, _ in viewer.pairs})
        lag = f"p99 {ms(percentile(lags, 0.99))}, max {ms(max(lags))}" if lags else "n/a"
        delay = f"p99 {ms(percentile(delays, 0.99))}" if delays else "no frames"
        parts.append(
            f"process {n} ({len(viewer.pairs)} viewers of {sessions} sessions): frame delay "
            f"{delay}, its event loop late by {lag}"
        )
    return (
        f"  the viewer processes' own lag (an asyncio.sleep({LAG_TIMER_S:g}) timer's lateness "
        f"while frames flowed): {'; '.join(parts)}"
    )


# ------------------------------------------------------------------ the run
def run(args: argparse.Namespace) -> None:
    from tests.support.servers import asgi_server, celery_worker, relay_process

    organisation, learners, instructor = people(args.sessions)
    cookies = {user.pk: cookie_for(user) for user in [*learners, instructor]}
    learner = learners[0]
    # The helpers default to the test settings: these processes run the same as this one.
    same = {"DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"]}
    with asgi_server(**same) as port:
        with celery_worker(**same):
            with relay_process(**same):
                if args.starts:  # --starts 0 leaves the first frames out
                    measure_first_frames(
                        port, organisation, learner, cookies[learner.pk], args.starts
                    )
            template = measure_relay_reads(
                port,
                organisation,
                learner,
                (cookies[learner.pk], cookies[instructor.pk]),
                args.ticks,
            )
        # No worker from here on: the fan-out's sessions stay requested, never provisioned.
        measure_fan_out(
            port,
            organisation,
            learners,
            cookies,
            cookies[instructor.pk],
            args.viewers_per_session,
            args.frames,
            template or {"type": "frame", "figures": {}, "logs": [], "events": []},
            args.viewer_processes,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--viewers-per-session", type=int, default=20)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--viewer-processes", type=int, default=2)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/6"
    )
    args = parser.parse_args()
    fd_limit_raise()
    database_url, admin_url = scratch_database_url()
    root = Path(tempfile.mkdtemp(prefix="sdlk-", dir="/tmp"))
    database_recreate(admin_url)
    os.environ.update(environment(database_url, args.redis_url, root))
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate_schemas", "--noinput", "-v", "0"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        import django

        django.setup()
        run(args)
    finally:
        left = sandboxes_stop(root)
        if left:
            print(f"stopped {left} sandbox(es) left running")
        redis_forget(args.redis_url)
        with contextlib.suppress(ImportError):
            from django.db import connections

            connections.close_all()
        database_recreate(admin_url, create=False)
        shutil.rmtree(root, ignore_errors=True)
        if pids := processes_under(root):
            print(f"processes still naming {root}: {pids}")
        print(
            f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )


if __name__ == "__main__":
    main()
