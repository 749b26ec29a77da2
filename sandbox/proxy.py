"""The fault proxy: every hop between two sandbox services passes through it, Toxiproxy-style.

Faults are made at the TCP level, so they need no kernel support (no netem) and behave the
same on every backend. One proxy (one asyncio loop) hosts all hops of a sandbox. With no
toxic enabled a chunk goes straight from one socket to the other; a toxic holds chunks in a
bounded queue released by one timer per direction, and a full queue pauses the sender.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, cast

Address = tuple[str, int]

DIRECTIONS = ("upstream", "downstream", "both")
MAX_RETRANSMITS = 5  # at 100 % loss a chunk still arrives, after this many retransmissions
HIGH_WATER = 256 * 1024  # bytes one direction of one connection may hold before pausing its sender
LOW_WATER = 64 * 1024
PACING_SLICE_SECONDS = 0.02  # a paced chunk leaves in slices of about this much wire time
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST

# field: (lowest, highest, unit)
BOUNDS: dict[str, tuple[float, float, str]] = {
    "latency_ms": (0, 60_000, "ms"),
    "jitter_ms": (0, 60_000, "ms"),
    "bandwidth_kbps": (0, 10_000_000, "kbps"),
    "loss_percent": (0, 100, "%"),
    "retransmit_ms": (0, 60_000, "ms"),
    "reset_percent": (0, 100, "%"),
    "reset_after_ms": (0, 3_600_000, "ms"),
    "timeout_close_ms": (0, 3_600_000, "ms"),
    "limit_bytes": (0, 1_000_000_000, "bytes"),
    "reset_response_percent": (0, 100, "%"),
}


@dataclass(frozen=True)
class Toxics:
    """The faults of one hop; all off by default. Out-of-bounds values raise ValueError.

    A chunk is one read (at most 256 KiB). Chunks never overtake each other, jitter or not.
    Loss at 100 % makes every chunk wait MAX_RETRANSMITS * retransmit_ms. The reset dice
    are rolled when a connection opens and, for open ones, whenever the reset settings
    change. Timeout and partition hold bytes rather than drop them, so lifting either lets
    the stream go on intact; a connection blackholed by a partition reaches its upstream
    once the partition heals, as a retried SYN would. A byte limit or a mid-response reset
    cuts a response short: the bytes before the cut are delivered, then a FIN or an RST.
    """

    latency_ms: float = 0  # added to each chunk, in each direction `direction` names
    jitter_ms: float = 0  # uniform +/- around latency_ms, never below 0
    bandwidth_kbps: float = 0  # kilobits (1000 bit) per second; 0 = unlimited
    loss_percent: float = 0  # chance a chunk is "retransmitted": delayed retransmit_ms more
    retransmit_ms: float = 200
    reset_percent: float = 0  # chance a connection gets an RST reset_after_ms after it opens
    reset_after_ms: float = 0
    timeout: bool = False  # nothing flows either way; closed after timeout_close_ms if > 0
    timeout_close_ms: float = 0
    partition: bool = False  # blackhole: new connections wait unconnected, open ones stall
    direction: str = "both"  # where latency, jitter, bandwidth and loss apply
    limit_bytes: float = 0  # a connection is closed once it carried this much back (0 = off)
    reset_response_percent: float = 0  # chance a response is cut by an RST after its first bytes

    def __post_init__(self) -> None:
        for name, (lowest, highest, unit) in BOUNDS.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not lowest <= value <= highest:
                raise ValueError(
                    f"{name} must be a number from {lowest:g} to {highest:g} {unit}, got {value!r}"
                )
        for name in ("timeout", "partition"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}"
            )

    def shapes(self, direction: str) -> bool:
        """Whether chunks going `direction` ("upstream" or "downstream") are delayed or paced."""
        applies = self.direction in ("both", direction)
        return applies and bool(
            self.latency_ms or self.jitter_ms or self.bandwidth_kbps or self.loss_percent
        )

    @property
    def stalls(self) -> bool:
        return self.timeout or self.partition

    @property
    def cuts(self) -> bool:
        """Whether responses may be cut short (a byte limit or mid-response resets)."""
        return bool(self.limit_bytes or self.reset_response_percent)


def _check_address(field: str, address: object, *, lowest_port: int) -> None:
    host, port = address if isinstance(address, tuple) and len(address) == 2 else ("", -1)
    if not isinstance(host, str) or not host or not isinstance(port, int):
        raise ValueError(f"{field} must be a (host, port) pair, got {address!r}")
    if not lowest_port <= port <= 65535:
        raise ValueError(f"{field} port must be from {lowest_port} to 65535, got {port!r}")


class _Timer:
    """Calls back no sooner than `deadline` on time.monotonic, whatever clock the loop keeps
    (uvloop's is cached per iteration, in milliseconds, and would fire a little early)."""

    __slots__ = ("callback", "deadline", "handle", "loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deadline: float, callback: Callable[[], None]
    ) -> None:
        self.loop = loop
        self.deadline = deadline
        self.callback = callback
        self.handle = loop.call_later(max(0.0, deadline - time.monotonic()), self._fire)

    def _fire(self) -> None:
        left = self.deadline - time.monotonic()
        if left > 0:
            self.handle = self.loop.call_later(left, self._fire)
        else:
            self.callback()

    def cancel(self) -> None:
        self.handle.cancel()


def _socket_of(transport: asyncio.BaseTransport) -> socket.socket | None:
    return cast("socket.socket | None", transport.get_extra_info("socket"))


class _Flow:
    """One direction of one connection: bytes read from `src`, shaped, written to `dst`."""

    __slots__ = (
        "cut",
        "dead",
        "dst",
        "dst_full",
        "eof",
        "eof_passed",
        "held",
        "held_bytes",
        "last_due",
        "link",
        "name",
        "src",
        "src_gone",
        "timer",
        "wire_free",
    )

    def __init__(self, link: _Link, name: str) -> None:
        self.link = link
        self.name = name
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.dst_full = False  # dst's send buffer is over its high-water mark: hold, do not write
        self.held: deque[tuple[float, bytes]] = deque()  # (due time, bytes), in order
        self.held_bytes = 0
        self.last_due = 0.0
        self.wire_free = 0.0  # when the paced wire can take the next byte
        self.timer: _Timer | None = None
        self.eof = False
        self.eof_passed = False
        self.src_gone = False
        self.dead = False  # dst is gone: whatever still comes is dropped
        self.cut = ""  # "close" or "reset": the stream was cut, whatever still comes is dropped

    def feed(self, data: bytes) -> None:
        if self.cut:
            return
        if self.link.hop.toxics.cuts:
            data, cut = self._cut_short(data)
            if data:
                self._forward(data)
            if cut:
                self.cut = cut
                self.link.hop.cut_total[cut] += 1
                self.end()  # the cut happens once what passed is delivered
            return
        self._forward(data)

    def _forward(self, data: bytes) -> None:
        link = self.link
        if (
            not self.held
            and self.dst is not None
            and not link.stalled
            and not link.hop.shaped[self.name]
        ):
            self.dst.write(data)
            link.hop.forwarded[self.name] += len(data)
            return
        self._hold(data)

    def _cut_short(self, data: bytes) -> tuple[bytes, str]:
        """What of `data` may pass, and how the stream then ends: responses end early at the
        byte limit (a FIN, as Toxiproxy's limit_data) or, by chance, in an RST after their
        first bytes."""
        link, toxics = self.link, self.link.hop.toxics
        if self.name == "upstream":
            link.awaiting_response = True
            return data, ""
        keep, how = len(data), ""
        if link.awaiting_response:
            link.awaiting_response = False
            chance = toxics.reset_response_percent
            if chance and link.hop.rng.random() * 100 < chance:
                keep, how = max(1, len(data) // 2), "reset"
        room = int(toxics.limit_bytes) - link.carried_back
        if toxics.limit_bytes and room <= keep:
            keep, how = max(0, room), "close"
        link.carried_back += keep
        return data[:keep], how

    def _hold(self, data: bytes) -> None:
        if self.dead:
            return
        hop = self.link.hop
        toxics = hop.toxics
        now = time.monotonic()
        if not hop.shaped[self.name]:
            self._append(max(now, self.last_due), data)
        elif not toxics.bandwidth_kbps:
            self._append(now + self._delay(toxics), data)
        else:
            rate = toxics.bandwidth_kbps * 125  # bytes per second
            size = max(1024, int(rate * PACING_SLICE_SECONDS))
            for start in range(0, len(data), size):
                piece = data[start : start + size]
                # a byte arrives once the wire has carried it, then the delay applies
                self.wire_free = max(now, self.wire_free) + len(piece) / rate
                self._append(self.wire_free + self._delay(toxics), piece)
        if self.held_bytes >= HIGH_WATER:
            self.block("held")
        self.kick()

    def _append(self, due: float, data: bytes) -> None:
        self.last_due = max(due, self.last_due)  # TCP delivers in order, jitter or not
        self.held.append((self.last_due, data))
        self.held_bytes += len(data)

    def _delay(self, toxics: Toxics) -> float:
        rng = self.link.hop.rng
        delay = toxics.latency_ms
        if toxics.jitter_ms:
            delay = max(0.0, delay + rng.uniform(-toxics.jitter_ms, toxics.jitter_ms))
        if toxics.loss_percent:
            for _ in range(MAX_RETRANSMITS):
                if rng.random() * 100 >= toxics.loss_percent:
                    break
                delay += toxics.retransmit_ms
        return delay / 1000

    def kick(self) -> None:
        """Release what is due now, and arm the timer for what is due later."""
        if self.link.stalled or self.dst is None or self.dst_full:
            return
        if self.timer is None and self.held:
            self.timer = _Timer(self.link.hop.loop, self.held[0][0], self._release)
        if not self.held:
            self._pass_eof()

    def _release(self) -> None:
        self.timer = None
        if self.link.stalled or self.dst is None or self.dst_full:
            return
        now = time.monotonic()
        out: list[bytes] = []
        while self.held and self.held[0][0] <= now:
            out.append(self.held.popleft()[1])
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            self.held_bytes -= len(data)
            self.dst.write(data)
            self.link.hop.forwarded[self.name] += len(data)
        if self.held_bytes <= LOW_WATER:
            self.unblock("held")
        self.kick()

    def _pass_eof(self) -> None:
        if not self.eof or self.eof_passed or self.dst is None:
            return
        self.eof_passed = True
        if self.cut == "reset":
            self.link.abort(reset=True)
            return
        if self.src_gone or not self.dst.can_write_eof():
            self.dst.close()
        else:
            self.dst.write_eof()
            self.link.half_closed()

    def end(self) -> None:
        """The source sent EOF: pass it on once everything held before it is delivered."""
        self.eof = True
        self.kick()

    def drop(self) -> None:
        """The destination is gone: forget what is held and ignore what comes."""
        self.dead = True
        self.dst = None
        self.held.clear()
        self.held_bytes = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.unblock("held")

    def block(self, reason: str) -> None:
        self.link.reading_blocks[self.name].add(reason)
        if self.src is not None:
            self.src.pause_reading()

    def unblock(self, reason: str) -> None:
        blocks = self.link.reading_blocks[self.name]
        blocks.discard(reason)
        if not blocks and self.src is not None:
            self.src.resume_reading()


class _Pipe(asyncio.Transport):
    """One end of an in-process connection, for a hop whose upstream is served by the same
    process (a service serves the hops that lead to it). What one end writes reaches the
    other end's protocol on the loop's next turn: no socket, no system call, no wake-up.
    The hop's toxics act where they always did, on the caller's real TCP connection; this
    is only the loopback leg behind them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.loop = loop
        self.protocol = protocol
        self.peer: _Pipe | None = None
        self.closed = False
        self.eof_sent = False
        self.paused = False
        self.backlog: deque[bytes | None] = deque()  # arrived while paused; None is an EOF
        self.queued = 0  # bytes written to this end and not yet handed to its protocol
        self.writing_paused = False  # this end's protocol was told to stop writing

    @staticmethod
    def connect(
        loop: asyncio.AbstractEventLoop, caller: asyncio.Protocol, callee: asyncio.Protocol
    ) -> None:
        ends = _Pipe(loop, caller), _Pipe(loop, callee)
        ends[0].peer, ends[1].peer = ends[1], ends[0]
        callee.connection_made(ends[1])
        caller.connection_made(ends[0])

    # what the owner of this end does
    def write(self, data: bytes | bytearray | memoryview) -> None:
        peer = self.peer
        if not data or self.closed or self.eof_sent or peer is None:
            return
        peer.queued += len(data)
        self.loop.call_soon(peer._arrive, bytes(data))
        if peer.queued > HIGH_WATER and not self.writing_paused:
            self.writing_paused = True  # as a socket's full send buffer pushes back
            self.protocol.pause_writing()

    def write_eof(self) -> None:
        if not self.closed and not self.eof_sent and self.peer is not None:
            self.eof_sent = True
            self.loop.call_soon(self.peer._arrive, None)

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        """What was written is delivered, then an EOF; this end's protocol hears it closed."""
        if self.closed:
            return
        self.write_eof()
        self._end(None)

    def abort(self) -> None:
        """Closes now; the other end hears a reset."""
        if self.closed:
            return
        peer = self.peer
        self._end(None)
        if peer is not None:
            self.loop.call_soon(peer._end, ConnectionResetError("connection reset by peer"))

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self.loop.call_soon(self._drain)

    def is_reading(self) -> bool:
        return not self.paused

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default  # no socket: nothing to set on it

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = cast("asyncio.Protocol", protocol)

    # what reaches this end from its peer
    def _arrive(self, data: bytes | None) -> None:
        if self.closed:
            return
        if self.paused or self.backlog:
            self.backlog.append(data)
            return
        self._hand_over(data)

    def _drain(self) -> None:
        while self.backlog and not self.paused and not self.closed:
            self._hand_over(self.backlog.popleft())

    def _hand_over(self, data: bytes | None) -> None:
        if data is not None:
            self.queued -= len(data)
            peer = self.peer
            if peer is not None and peer.writing_paused and self.queued <= LOW_WATER:
                peer.writing_paused = False
                peer.protocol.resume_writing()
            self.protocol.data_received(data)
        elif not self.protocol.eof_received():
            self.close()  # as a socket transport does when its protocol does not keep it open

    def _end(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.backlog.clear()
        self.peer = None
        self.loop.call_soon(self.protocol.connection_lost, exc)


class _Side(asyncio.Protocol):
    """One socket of a connection: feeds `outbound`, and is the destination of `inbound`."""

    def __init__(self, link: _Link, outbound: _Flow, inbound: _Flow) -> None:
        self.link = link
        self.outbound = outbound
        self.inbound = inbound

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = _socket_of(transport)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.link.attach(self, cast("asyncio.Transport", transport))

    def data_received(self, data: bytes) -> None:
        self.outbound.feed(data)

    def eof_received(self) -> bool:
        self.outbound.end()
        return True  # keep the socket open: the other direction may still have bytes to send

    def pause_writing(self) -> None:
        self.inbound.dst_full = True
        self.inbound.block("send buffer")

    def resume_writing(self) -> None:
        self.inbound.dst_full = False
        self.inbound.unblock("send buffer")
        self.inbound.kick()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self, exc)


class _Link:
    """One proxied connection: the client's socket and the one the proxy opened upstream."""

    def __init__(self, hop: Hop) -> None:
        self.hop = hop
        self.up = _Flow(self, "upstream")
        self.down = _Flow(self, "downstream")
        self.reading_blocks: dict[str, set[str]] = {"upstream": set(), "downstream": set()}
        self.client_side = _Side(self, self.up, self.down)
        self.server_side = _Side(self, self.down, self.up)
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        self.connector: asyncio.Task[Any] | None = None
        self.stalled = False
        self.closing = False  # no new work: a graceful close or an abort is under way
        self.aborted = False
        self.reset_timer: _Timer | None = None
        self.close_timer: _Timer | None = None
        self.awaiting_response = False  # a request went up and no byte came back yet
        self.carried_back = 0  # bytes passed downstream, for the byte limit

    def attach(self, side: _Side, transport: asyncio.Transport) -> None:
        if side is self.client_side:
            self.client = self.up.src = self.down.dst = transport
            self.hop.opened(self)
            self.apply(Toxics(), self.hop.toxics)
            return
        if self.closing:
            transport.abort()
            return
        self.server = self.down.src = self.up.dst = transport
        if self.reading_blocks["downstream"]:
            transport.pause_reading()
        self.up.kick()

    def apply(self, old: Toxics, new: Toxics) -> None:
        """Bring this connection in line with the hop's new toxics."""
        if self.closing:
            return
        if new.partition and self.server is None and self.connector is None and not old.partition:
            self.hop.blackholed_total += 1
        if new.stalls != self.stalled:
            self.stalled = new.stalls
            self.up.kick()
            self.down.kick()
        if (old.reset_percent, old.reset_after_ms) != (new.reset_percent, new.reset_after_ms):
            self._cancel_timers(reset=True)
            if new.reset_percent and self.hop.rng.random() * 100 < new.reset_percent:
                deadline = time.monotonic() + new.reset_after_ms / 1000
                self.reset_timer = _Timer(self.hop.loop, deadline, self._reset)
        timeout_kept = old.timeout and old.timeout_close_ms == new.timeout_close_ms
        if not (new.timeout and new.timeout_close_ms):
            self._cancel_timers(close=True)
        elif not (timeout_kept and self.close_timer):
            self._cancel_timers(close=True)
            deadline = time.monotonic() + new.timeout_close_ms / 1000
            self.close_timer = _Timer(self.hop.loop, deadline, self._time_out)
        if not new.partition and self.server is None and self.connector is None:
            self.connector = self.hop.loop.create_task(self._connect())
            self.hop.tasks.add(self.connector)

    async def _connect(self) -> None:
        host, port = self.hop.upstream
        task = self.connector
        try:
            if self.hop.in_process is not None:
                callee = self.hop.in_process()
                refused = callee is None  # the server is stopping: it takes no new connection
                if callee is not None:
                    _Pipe.connect(self.hop.loop, self.server_side, callee)
            else:
                await self.hop.loop.create_connection(lambda: self.server_side, host, port)
                refused = False
        except OSError:
            refused = True
        finally:
            self.connector = None
            if task is not None:
                self.hop.tasks.discard(task)
        if refused:
            self.hop.refused_total += 1
            self.abort(reset=True)  # the client sees what a refused connection looks like

    def _reset(self) -> None:
        self.reset_timer = None
        self.hop.resets_total += 1
        self.abort(reset=True)

    def _time_out(self) -> None:
        self.close_timer = None
        self.hop.timed_out_total += 1
        self.abort(reset=False)

    def half_closed(self) -> None:
        if self.up.eof_passed and self.down.eof_passed:
            self.closing = True
            self._cancel_timers(reset=True, close=True)
            for transport in (self.client, self.server):
                if transport is not None:
                    transport.close()  # both ends said EOF: flush what is written, then close

    def abort(self, *, reset: bool) -> None:
        """Close both sockets now, dropping what is held; with `reset`, peers get an RST."""
        if self.aborted:
            return
        self.aborted = self.closing = True
        self._cancel_timers(reset=True, close=True)
        self.up.drop()
        self.down.drop()
        if self.connector is not None:
            self.connector.cancel()
        for transport in (self.client, self.server):
            if transport is None:
                continue
            sock = _socket_of(transport) if reset and not transport.is_closing() else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            transport.abort()  # also cuts short a graceful close still flushing its buffer

    def lost(self, side: _Side, exc: Exception | None) -> None:
        side.outbound.src_gone = True
        if exc is not None or self.closing or self.server is None:
            self.abort(reset=exc is not None)  # a reset from one peer is passed to the other
        else:
            side.inbound.drop()  # nothing can reach this side any more
            side.outbound.end()  # the other side is closed once it has what this one sent
        if self.up.src_gone and (self.server is None or self.down.src_gone):
            self._cancel_timers(reset=True, close=True)
            self.hop.links.discard(self)

    def bytes_held(self) -> int:
        """What this connection costs in buffers: delayed chunks and unsent socket data."""
        held = self.up.held_bytes + self.down.held_bytes
        for transport in (self.client, self.server):
            if transport is not None and not transport.is_closing():
                held += transport.get_write_buffer_size()
        return held

    def _cancel_timers(self, *, reset: bool = False, close: bool = False) -> None:
        if reset and self.reset_timer is not None:
            self.reset_timer.cancel()
            self.reset_timer = None
        if close and self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None


class Hop:
    """One listener forwarding to one upstream, e.g. "orders->inventory"."""

    def __init__(self, name: str, listen: Address, upstream: Address) -> None:
        self.name = name
        self.listen = listen  # the bound address once started (port 0 picks a free one)
        self.upstream = upstream
        self.toxics = Toxics()
        # A new connection to the upstream server in this process (None: it is stopping),
        # in place of a TCP connection to `upstream`; set by `FaultProxy.serve_in_process`.
        self.in_process: Callable[[], asyncio.Protocol | None] | None = None
        self.shaped = {"upstream": False, "downstream": False}
        self.rng = random.Random()  # noqa: S311 - faults need variety, not secrecy
        self.links: set[_Link] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.forwarded = {"upstream": 0, "downstream": 0}
        self.connections_total = 0
        self.resets_total = 0
        self.refused_total = 0
        self.blackholed_total = 0
        self.timed_out_total = 0
        self.cut_total = {"close": 0, "reset": 0}  # responses cut short, by how
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"hop {self.name!r} is not started")
        return self._loop

    def set_toxics(self, toxics: Toxics) -> None:
        """Switch faults; open connections follow at once, as new ones do."""
        if not isinstance(toxics, Toxics):
            raise TypeError(f"toxics must be a Toxics, got {type(toxics).__name__}")
        old, self.toxics = self.toxics, toxics
        self.shaped = {name: toxics.shapes(name) for name in ("upstream", "downstream")}
        for link in list(self.links):
            link.apply(old, toxics)

    def opened(self, link: _Link) -> None:
        self.links.add(link)
        self.connections_total += 1

    def stats(self) -> dict[str, Any]:
        return {
            "listen": f"{self.listen[0]}:{self.listen[1]}",
            "upstream": f"{self.upstream[0]}:{self.upstream[1]}",
            "connections_total": self.connections_total,
            "connections_active": len(self.links),
            "bytes_upstream": self.forwarded["upstream"],
            "bytes_downstream": self.forwarded["downstream"],
            "bytes_held": sum(link.bytes_held() for link in self.links),
            "resets_total": self.resets_total,
            "refused_total": self.refused_total,
            "blackholed_total": self.blackholed_total,
            "timed_out_total": self.timed_out_total,
            "limited_total": self.cut_total["close"],
            "reset_responses_total": self.cut_total["reset"],
            "toxics": asdict(self.toxics),
        }

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = self.listen
        self._server = await self._loop.create_server(
            lambda: _Link(self).client_side, host, port, reuse_address=True, backlog=512
        )
        self.listen = cast("Address", self._server.sockets[0].getsockname()[:2])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.abort(reset=False)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for _ in range(10):  # aborted sockets report connection_lost on the next loop turn
            if not self.links:
                break
            await asyncio.sleep(0)
        self.links.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


class FaultProxy:
    """All hops of one sandbox, served by one asyncio loop."""

    def __init__(self, hops: list[tuple[str, Address, Address]]) -> None:
        self._hops: dict[str, Hop] = {}
        for name, listen, upstream in hops:
            if not isinstance(name, str) or not name:
                raise ValueError(f"hop name must be a non-empty string, got {name!r}")
            if name in self._hops:
                raise ValueError(f"hop name {name!r} is given twice; hop names must be unique")
            _check_address(f"hop {name!r} listen", listen, lowest_port=0)
            _check_address(f"hop {name!r} upstream", upstream, lowest_port=1)
            self._hops[name] = Hop(name, listen, upstream)

    async def start(self) -> None:
        started: list[Hop] = []
        try:
            for hop in self._hops.values():
                await hop.start()
                started.append(hop)
        except BaseException:
            for hop in started:
                await hop.stop()
            raise

    async def stop(self) -> None:
        for hop in self._hops.values():
            await hop.stop()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def serve_in_process(self, connection: Callable[[], asyncio.Protocol | None]) -> None:
        """Every hop's upstream is a server in this process: `connection()` gives a new
        connection's protocol (None when it takes no more), reached without a socket."""
        for hop in self._hops.values():
            hop.in_process = connection

    def hop(self, name: str) -> Hop:
        try:
            return self._hops[name]
        except KeyError:
            known = ", ".join(sorted(self._hops)) or "none"
            raise KeyError(f"no hop named {name!r}; known hops: {known}") from None

    def set_toxics(self, name: str, toxics: Toxics) -> None:
        self.hop(name).set_toxics(toxics)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: hop.stats() for name, hop in self._hops.items()}
