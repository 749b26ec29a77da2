"""The telemetry relay: reads every running sandbox once per tick and sends one frame to
its session's channel group, however many people watch and however many relays run.

Each tick a relay claims each sandbox with `SET NX` on a key named after the tick, so
with several replicas exactly one reads it; the frame goes to the group (every viewer
on every ASGI replica) and is kept as the session's last frame, which a viewer who
connects or reconnects gets first.

    python manage.py lab_relay            # runs until stopped
    python manage.py lab_relay --ticks 5  # bounded (tests, benchmarks)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils.module_loading import import_string
from prometheus_client import Counter, Gauge, Histogram

from apps.scenarios.events import (
    hidden_scenarios,
    lab_session_group,
    redis_prefix,
    relay_redis,
    running_sandboxes,
)
from sandbox.client import SandboxClient

log = logging.getLogger(__name__)

TICK_S = 1.0
NEW_SANDBOX_POLL_S = 0.1  # a sandbox that just started is read at once, not at the next tick
READ_TIMEOUT_S = 0.8
SPREAD_S = 0.75  # a tick's reads are spread over this much of it, each sandbox at its own phase
LOG_LINES = 20

FRAMES = Counter("sdlab_relay_frames", "Frames the relay sent to viewers.", ["outcome"])
READS = Counter("sdlab_relay_reads", "Sandbox reads by the relay.", ["outcome"])
LAG = Gauge("sdlab_relay_lag_seconds", "How late the last tick finished after its spread of reads.")
TICK = Histogram(
    "sdlab_relay_tick_seconds",
    "Time to read every claimed sandbox and send its frame.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


FrameListener = Callable[[str, int, dict[str, Any]], None]
# Listeners touch the database: a few threads of their own, apart from the sandbox reads.
LISTENER_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="relay-listener")


@cache
def frame_listeners() -> tuple[FrameListener, ...]:
    """What else hears each frame (settings.LAB_FRAME_LISTENERS), e.g. the step checks;
    named in settings so that this app needs to know nothing of the apps built on it."""
    return tuple(import_string(path) for path in settings.LAB_FRAME_LISTENERS)


def phase(key: str) -> float:
    """When in each tick this sandbox is read: stable, so its frames come a second apart,
    and spread, so a thousand viewers are not all sent their frames in the same instant."""
    return (zlib.crc32(key.encode()) / 2**32) * SPREAD_S


# What gives a hidden scenario away: the changes it makes, as the sandbox logs them.
REVEALING = frozenset(
    {"scenario enabled", "scenario disabled", "knobs changed", "toxics changed", "load changed"}
)
LOG_FIELDS = (
    "time",
    "seq",
    "level",
    "service",
    "message",
    "trace_id",
    "span_id",
    "route",
    "status",
)


def conceal(frame: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    """The frame without the hidden scenarios: not listed, no metrics of theirs, no event
    or log line about switching anything (the learner's own switches included, while a
    drill runs: one of them would be the drill's), and log lines reduced to plain fields."""
    return {
        **frame,
        "scenario_metrics": {
            slug: values for slug, values in frame["scenario_metrics"].items() if slug not in hidden
        },
        "scenarios": {slug: v for slug, v in frame["scenarios"].items() if slug not in hidden},
        "load": {},  # a drill sets the load its scenario needs: that would name it
        "events": [
            e
            for e in frame["events"]
            if e.get("scenario") not in hidden and e.get("what") != "load changed"
        ],
        "logs": [
            {k: line[k] for k in LOG_FIELDS if k in line}
            for line in frame["logs"]
            if line.get("message") not in REVEALING
        ],
    }


@dataclass
class Relay:
    name: str = field(default_factory=lambda: f"relay-{os.getpid()}")
    log_cursor: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # sandboxes read at least once
    reads: int = 0

    def running(self) -> dict[str, str]:
        return running_sandboxes()

    def claim(self, key: str, tick: int | str) -> bool:
        """True for exactly one relay per sandbox per tick."""
        claimed = relay_redis().set(
            f"{redis_prefix()}:claim:{key}:{tick}", self.name, nx=True, ex=10
        )
        return bool(claimed)

    def read(self, key: str, address: str) -> dict[str, Any] | None:
        """One sandbox's frame (a thread's work: the client is synchronous)."""
        client = SandboxClient(address, timeout=READ_TIMEOUT_S)
        try:
            state = client.state(logs_since=self.log_cursor.get(key, 0))
            logs = state.get("logs", [])
        except (OSError, ValueError) as exc:
            READS.labels("error").inc()
            log.info("relay read failed", extra={"session": key, "error": str(exc)})
            return None
        READS.labels("ok").inc()
        self.reads += 1
        self.answered.add(key)
        if logs:
            self.log_cursor[key] = max(int(line.get("seq", 0)) for line in logs)
        _schema, _, session_id = key.rpartition(":")
        # Read after the state: a drill hides its scenario before it enables it, so any
        # state that shows the scenario is read with it already hidden.
        hidden = hidden_scenarios(key)
        frame = {
            "type": "frame",
            "session": int(session_id),
            "at": time.time(),
            "ready": state.get("ready", False),
            "figures": state.get("figures", {}),
            "scenario_metrics": state.get("scenario_metrics", {}),
            "scenarios": state.get("scenarios", {}),
            "mitigations": state.get("mitigations", {}),
            "load": state.get("load", {}),
            "events": state.get("events", [])[-20:],
            "logs": logs[-LOG_LINES:],
            "expires_at": state.get("expires_at"),
        }
        return conceal(frame, hidden) if hidden else frame

    async def tick(self, tick: int) -> int:
        """Reads and sends every sandbox this relay claims for `tick`, each at its phase
        of the tick; returns how many."""
        began = time.time()
        running = self.running()
        new = set(running) - self.seen  # registered since the last look: no first frame yet
        self.seen |= new
        claimed = [(k, address) for k, address in running.items() if self.claim(k, tick)]

        async def at_phase(key: str, address: str) -> int:
            if key not in new:  # a first frame goes now, not up to a tick's spread later
                await asyncio.sleep(max(0.0, began + phase(key) - time.time()))
            return await self.send([(key, address)])

        sent = sum(await asyncio.gather(*(at_phase(k, a) for k, a in claimed)))
        for key in set(self.log_cursor) - set(running):
            del self.log_cursor[key]
        self.seen &= set(running)
        self.answered &= set(running)
        return sent

    async def first_reads(self) -> int:
        """Sandboxes registered since the last look get their first frame now (once,
        whichever relay claims it), so a learner's charts do not wait for the next tick."""
        running = self.running()
        new = [k for k in running if k not in self.seen]
        self.seen |= set(new)
        claimed = [(k, running[k]) for k in new if self.claim(k, "first")]
        sent = await self.send(claimed)
        for key, _ in claimed:
            if key not in self.answered:  # not answering yet (still busy starting): look again
                self.seen.discard(key)
                relay_redis().delete(f"{redis_prefix()}:claim:{key}:first")
        return sent

    async def send(self, claimed: list[tuple[str, str]]) -> int:
        layer = get_channel_layer()
        frames = await asyncio.gather(
            *(asyncio.to_thread(self.read, key, address) for key, address in claimed)
        )
        client = relay_redis()
        sent = 0
        for (key, _), frame in zip(claimed, frames, strict=True):
            if frame is None:
                continue
            schema, _, session_id = key.rpartition(":")
            client.set(f"{redis_prefix()}:last:{key}", json.dumps(frame), ex=30)
            if layer is not None:
                await layer.group_send(
                    lab_session_group(schema, int(session_id)),
                    {"type": "lab.frame", "frame": frame},
                )
            FRAMES.labels("sent").inc()
            sent += 1
            for listener in frame_listeners():
                # sync_to_async, not a bare executor: what the listener sends through the
                # channel layer (async_to_sync) runs back on this loop and its connections.
                await sync_to_async(listener, thread_sensitive=False, executor=LISTENER_THREADS)(
                    schema, int(session_id), frame
                )
        return sent

    async def timed_tick(self, tick: int, due: float) -> None:
        with TICK.time():
            try:
                await self.tick(tick)
            except Exception:  # one bad tick must not end the relay
                log.exception("relay tick failed")
        late = max(0.0, time.time() - due - SPREAD_S)
        LAG.set(late)
        if late > TICK_S - SPREAD_S:
            log.warning("relay tick overran", extra={"seconds": time.time() - due})

    async def run(self, ticks: int | None = None) -> None:
        """Starts a tick every second and, in between, gives new sandboxes their first
        frame; a slow tick overlaps the next one rather than delaying it."""
        running: set[asyncio.Task[None]] = set()
        done = 0
        while ticks is None or done < ticks:
            due = (math.floor(time.time() / TICK_S) + 1) * TICK_S
            while due - time.time() > NEW_SANDBOX_POLL_S:
                await asyncio.sleep(NEW_SANDBOX_POLL_S)
                try:
                    await self.first_reads()
                except Exception:
                    log.exception("relay first read failed")
            await asyncio.sleep(max(0.0, due - time.time()))
            task = asyncio.create_task(self.timed_tick(round(due / TICK_S), due))
            running.add(task)
            task.add_done_callback(running.discard)
            done += 1
        await asyncio.gather(*running)
