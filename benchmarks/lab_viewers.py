"""Lab viewers for benchmarks/labs.py: WebSockets that read a lab session's frames and
note when each arrived, in the benchmark's own event loop or in processes of their own.

A viewer process (`python -m benchmarks.lab_viewers`, started by `viewer_processes`)
reads one JSON line on stdin: where to connect and which viewers to open. It answers on
stdout one line once every viewer is past its hello; reads frames until it reads a line
"stop" (or stdin ends, or its bound passes); closes its viewers; and answers one last
line: each frame's "at" and receive time, the viewers the server closed, and how late
its own event loop's timer fired. It imports no Django, so it starts in a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 30.0  # a bound on every wait, not a speed check
CONNECTS_AT_ONCE = 25  # across all the viewer processes of a run
LAG_TIMER_S = 0.05
PIPE_LIMIT = 2**24  # a viewer process's last line carries every frame it saw

Pair = tuple[int, str]  # (lab session id, the cookie of the person viewing it)


def lab_url(host: str, port: int, session_id: int) -> str:
    return f"ws://{host}:{port}/ws/labs/{session_id}/"


async def viewers_open(
    host: str, port: int, pairs: list[Pair], at_once: int = CONNECTS_AT_ONCE
) -> list[ClientConnection]:
    """One lab WebSocket per (session id, cookie), each past its hello, on loopback."""
    gate = asyncio.Semaphore(at_once)

    async def one(session_id: int, cookie: str) -> ClientConnection:
        async with gate:
            ws = await ws_connect(
                lab_url(host, port, session_id),
                host="127.0.0.1",
                port=port,
                proxy=None,
                origin=Origin(f"http://{host}:{port}"),
                additional_headers={"Cookie": cookie},
                open_timeout=WAIT_S,
            )
            hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            if hello.get("type") != "hello":
                raise RuntimeError(f"the viewer of lab {session_id} got {hello} first")
            return ws

    return list(await asyncio.gather(*(one(s, c) for s, c in pairs)))


@dataclass
class Viewing:
    """What a set of viewers saw of the frames made after `since` (not the last frame
    each is sent on connecting)."""

    since: float
    seen: list[tuple[float, float]] = field(default_factory=list)  # (frame's "at", received)
    dropped: int = 0  # sockets the server closed before the benchmark did
    ending: bool = False

    @property
    def delays(self) -> list[float]:
        return [received - at for at, received in self.seen if at >= self.since]


async def frames_into(ws: ClientConnection, viewing: Viewing) -> None:
    """Reads frames until the socket closes; notes each one's "at" and when it was read."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            received = time.time()
            message = json.loads(raw)
            if message.get("type") == "frame":
                viewing.seen.append((float(message["at"]), received))
    if not viewing.ending:
        viewing.dropped += 1


async def viewers_close(
    sockets: list[ClientConnection],
    readers: list[asyncio.Task],
    viewing: Viewing,
    at_once: int = CONNECTS_AT_ONCE,
) -> None:
    """Closes as many at once as `viewers_open` opens: a close is a group_discard."""
    viewing.ending = True
    gate = asyncio.Semaphore(at_once)

    async def one(ws: ClientConnection) -> None:
        async with gate:
            await ws.close()

    await asyncio.gather(*(one(ws) for ws in sockets), return_exceptions=True)
    await asyncio.gather(*readers, return_exceptions=True)


async def loop_lag(lags: list[tuple[float, float]], until: float) -> None:
    """Notes (when, how late) a timer of LAG_TIMER_S fires: the time this event loop was
    busy elsewhere, which a frame waiting in one of its sockets waits too."""
    while time.time() < until:
        asked = time.perf_counter()
        await asyncio.sleep(LAG_TIMER_S)
        lags.append((time.time(), time.perf_counter() - asked - LAG_TIMER_S))


# ------------------------------------------------------------------ a viewer process
def answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def watch() -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=PIPE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    task = json.loads(await asyncio.wait_for(stdin.readline(), WAIT_S))
    began = time.perf_counter()
    pairs = [(int(session_id), str(cookie)) for session_id, cookie in task["pairs"]]
    sockets = await viewers_open(task["host"], task["port"], pairs, task["at_once"])
    viewing = Viewing(since=0.0)  # the benchmark keeps the frames made after its own start
    readers = [asyncio.create_task(frames_into(ws, viewing)) for ws in sockets]
    lags: list[tuple[float, float]] = []
    timer = asyncio.create_task(loop_lag(lags, time.time() + task["seconds"]))
    answer({"connecting_s": time.perf_counter() - began})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stdin.readline(), task["seconds"])  # "stop", or stdin's end
    timer.cancel()
    await viewers_close(sockets, readers, viewing, task["at_once"])
    answer({"seen": viewing.seen, "dropped": viewing.dropped, "lags": lags})


# ------------------------------------------------------------------ the benchmark's side
@dataclass
class ViewerProcess:
    """A viewer process of the benchmark, and what it reported."""

    process: asyncio.subprocess.Process
    pairs: list[Pair]
    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    connecting_s: float = 0.0
    viewing: Viewing = field(default_factory=lambda: Viewing(since=0.0))
    lags: list[tuple[float, float]] = field(default_factory=list)
    cpu: float | None = None  # its CPU while frames flowed, in cores (the benchmark's note)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def answered(self, seconds: float) -> dict[str, Any]:
        line = await asyncio.wait_for(self.stdout.readline(), seconds)
        if not line:
            code = await asyncio.wait_for(self.process.wait(), WAIT_S)
            raise RuntimeError(f"viewer process {self.pid} exited with {code} (see stderr)")
        return dict(json.loads(line))

    async def finish(self, since: float) -> None:
        """Tells it to stop; keeps what its viewers saw of the frames made after `since`."""
        self.stdin.write(b"stop\n")
        await self.stdin.drain()
        report = await self.answered(WAIT_S * 2)
        self.viewing = Viewing(
            since=since,
            seen=[(at, received) for at, received in report["seen"]],
            dropped=report["dropped"],
        )
        self.lags = [(when, late) for when, late in report["lags"]]

    async def stop(self) -> None:
        """Ends it by its PID: a signal only if it has not ended on its own."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), WAIT_S)
            except TimeoutError:
                os.kill(self.pid, signal.SIGKILL)
                await self.process.wait()


@contextlib.asynccontextmanager
async def viewer_processes(
    host: str, port: int, shares: list[list[Pair]], seconds: float
) -> AsyncIterator[list[ViewerProcess]]:
    """One viewer process per share of the viewers, each with every viewer past its hello;
    each lives at most `seconds` after that, and is stopped by its PID on the way out."""
    at_once = max(1, CONNECTS_AT_ONCE // len(shares))
    started: list[ViewerProcess] = []
    try:
        for pairs in shares:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.lab_viewers",
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=PIPE_LIMIT,
            )
            pipes = (process.stdin, process.stdout)  # both asked for above: neither is None
            viewer = ViewerProcess(
                process, pairs, *cast("tuple[asyncio.StreamWriter, asyncio.StreamReader]", pipes)
            )
            started.append(viewer)
            task = {"host": host, "port": port, "pairs": pairs, "at_once": at_once}
            viewer.stdin.write(json.dumps({**task, "seconds": seconds}).encode() + b"\n")
        # a bound on the connecting: every batch of connects may take its own open_timeout
        bound = WAIT_S * (1 + max(len(pairs) for pairs in shares) / at_once)
        reports = await asyncio.gather(*(viewer.answered(bound) for viewer in started))
        for viewer, report in zip(started, reports, strict=True):
            viewer.connecting_s = float(report["connecting_s"])
        yield started
    finally:
        await asyncio.gather(*(viewer.stop() for viewer in started), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(watch())
