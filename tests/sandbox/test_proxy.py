"""The fault proxy over real loopback sockets, with real asyncio servers as upstreams.

Timing assertions are lower bounds on injected delays only: never a speed.
"""

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sandbox.proxy import HIGH_WATER, MAX_RETRANSMITS, FaultProxy, Hop, Toxics

LOOPBACK = "127.0.0.1"
WAIT = 10.0  # bound on anything that should happen
STALL = 0.3  # how long a client waits before concluding nothing flows
HOP = "orders->inventory"
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Upstream:
    """A real server behind the proxy, made of protocols (so it starts no task of its own).

    It echoes what it reads, or with `flood` writes until its socket pushes back."""

    def __init__(self, *, flood: bool = False) -> None:
        self.flood = flood
        self.accepted = 0
        self.arrivals: list[float] = []
        self.blocked = asyncio.Event()
        self.connections: set[asyncio.Transport] = set()
        self.server: asyncio.Server | None = None
        self.address = (LOOPBACK, 0)
        self.refusing = False

    async def __aenter__(self) -> "Upstream":
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _UpstreamSide(self), LOOPBACK, 0)
        self.address = self.server.sockets[0].getsockname()[:2]
        return self

    def connection(self) -> asyncio.Protocol | None:
        """A connection reached in process, as a service serves the hops into it."""
        return None if self.refusing else _UpstreamSide(self)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for transport in list(self.connections):
            transport.abort()
        await self.server.wait_closed()
        await asyncio.sleep(0)


class _UpstreamSide(asyncio.Protocol):
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.paused = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.upstream.accepted += 1
        self.upstream.connections.add(transport)
        self._pump()

    def data_received(self, data: bytes) -> None:
        self.upstream.arrivals.append(time.monotonic())
        if not self.upstream.flood:
            self.transport.write(data)

    def pause_writing(self) -> None:
        self.paused = True
        self.upstream.blocked.set()

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()

    def _pump(self) -> None:
        while self.upstream.flood and not self.paused and not self.transport.is_closing():
            self.transport.write(b"f" * 65536)

    def connection_lost(self, exc: Exception | None) -> None:
        self.upstream.connections.discard(self.transport)


UPSTREAM_LEGS = ["tcp", "in-process"]
upstream_leg = "tcp"


@pytest.fixture(params=UPSTREAM_LEGS)
def leg(request: pytest.FixtureRequest):
    """A test that uses it runs twice: with the upstream reached over TCP (a proxy of its
    own) and in the same process (a service serving the hops that lead to it)."""
    global upstream_leg  # read by run(), which every scenario goes through
    upstream_leg = request.param
    yield request.param
    upstream_leg = "tcp"


def run(scenario: Callable[..., Awaitable[None]], **upstream_options: bool) -> None:
    """Run `scenario(proxy, hop, upstream)` with one hop in front of a fresh upstream."""

    async def main() -> None:
        async with Upstream(**upstream_options) as upstream:
            hops = [(HOP, (LOOPBACK, 0), upstream.address)]
            async with FaultProxy(hops) as proxy:
                if upstream_leg == "in-process":
                    proxy.serve_in_process(upstream.connection)
                await scenario(proxy, proxy.hop(HOP), upstream)

    asyncio.run(main())


async def connect(hop: Hop) -> Stream:
    return await asyncio.wait_for(asyncio.open_connection(*hop.listen), WAIT)


async def echo(stream: Stream, data: bytes = b"ping") -> float:
    """Send `data`, read the echo back; returns the seconds it took."""
    reader, writer = stream
    started = time.monotonic()
    writer.write(data)
    await asyncio.wait_for(writer.drain(), WAIT)
    assert await asyncio.wait_for(reader.readexactly(len(data)), WAIT) == data
    return time.monotonic() - started


async def assert_stalled(reader: asyncio.StreamReader) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), STALL)


async def assert_closed_by_proxy(reader: asyncio.StreamReader) -> None:
    """The connection ends, by EOF or by reset, within WAIT."""
    with contextlib.suppress(ConnectionResetError):
        while await asyncio.wait_for(reader.read(65536), WAIT):
            pass


async def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() >= deadline:  # a bound on the loop, not a speed check
            raise TimeoutError("condition not met within the wait")
        await asyncio.sleep(0.01)


async def close(*streams: Stream) -> None:
    for _, writer in streams:
        writer.close()
    for _, writer in streams:
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(writer.wait_closed(), WAIT)


async def exchange_large(stream: Stream, payload: bytes) -> bytes:
    """Write `payload` while reading its echo, so neither side waits on the other."""
    reader, writer = stream

    async def send() -> None:
        writer.write(payload)
        await writer.drain()

    sending = asyncio.ensure_future(send())
    received = await asyncio.wait_for(reader.readexactly(len(payload)), WAIT)
    await asyncio.wait_for(sending, WAIT)
    return received


# pass-through


@pytest.mark.usefixtures("leg")
def test_bytes_pass_through_both_ways_intact_including_more_than_a_mebibyte():
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        stream = await connect(hop)
        await echo(stream, b"GET / HTTP/1.1\r\nHost: inventory\r\n\r\n")
        received = await exchange_large(stream, payload)
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        await close(stream)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_shaped_traffic_still_arrives_intact_and_in_order():
    payload = os.urandom(1024 * 1024)
    toxics = Toxics(
        latency_ms=2, jitter_ms=2, bandwidth_kbps=200_000, loss_percent=20, retransmit_ms=3
    )

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(toxics)
        stream = await connect(hop)
        assert await exchange_large(stream, payload) == payload
        await close(stream)

    run(scenario)


@pytest.mark.parametrize("toxics", [Toxics(), Toxics(latency_ms=50)], ids=["plain", "shaped"])
@pytest.mark.usefixtures("leg")
def test_a_half_close_passes_after_the_bytes_before_it_and_the_reply_still_comes_back(toxics):
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(toxics)
        reader, writer = await connect(hop)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        writer.write_eof()  # the upstream echoes, then closes on EOF
        reply = await asyncio.wait_for(reader.read(), WAIT)
        assert reply == b"GET / HTTP/1.0\r\n\r\n"
        await eventually(lambda: hop.stats()["connections_active"] == 0)
        writer.close()

    run(scenario)


# delays: lower bounds only


@pytest.mark.parametrize("direction", ["upstream", "downstream", "both"])
@pytest.mark.usefixtures("leg")
def test_latency_adds_at_least_latency_ms_in_each_direction_it_names(direction):
    latency = 0.1

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(Toxics(latency_ms=latency * 1000, direction=direction))
        stream = await connect(hop)
        sent = time.monotonic()
        round_trip = await echo(stream)
        received = sent + round_trip
        arrived = upstream.arrivals[-1]  # the echo server answers as soon as bytes arrive
        if direction in ("upstream", "both"):
            assert arrived - sent >= latency
        if direction in ("downstream", "both"):
            assert received - arrived >= latency
        if direction == "both":
            assert round_trip >= 2 * latency
        await close(stream)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_jitter_never_takes_a_chunk_below_its_band():
    latency, jitter = 0.08, 0.04

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(
            Toxics(latency_ms=latency * 1000, jitter_ms=jitter * 1000, direction="upstream")
        )
        stream = await connect(hop)
        for _ in range(8):
            sent = time.monotonic()
            await echo(stream)
            assert upstream.arrivals[-1] - sent >= latency - jitter
        await close(stream)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_bandwidth_paces_a_payload_to_at_least_its_wire_time():
    size, kbps = 64 * 1024, 1024
    wire_seconds = size * 8 / (kbps * 1000)  # 0.512 s

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(Toxics(bandwidth_kbps=kbps, direction="upstream"))
        stream = await connect(hop)
        started = time.monotonic()
        await exchange_large(stream, os.urandom(size))
        assert upstream.arrivals[-1] - started >= wire_seconds
        await close(stream)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_loss_at_100_percent_delays_every_chunk_by_its_retransmissions():
    retransmit = 0.05

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(
            Toxics(loss_percent=100, retransmit_ms=retransmit * 1000, direction="upstream")
        )
        stream = await connect(hop)
        sent = time.monotonic()
        await echo(stream)
        assert upstream.arrivals[-1] - sent >= retransmit
        assert upstream.arrivals[-1] - sent >= MAX_RETRANSMITS * retransmit
        await close(stream)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_toxics_changed_at_run_time_apply_to_an_open_connection():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        stream = await connect(hop)
        await echo(stream)
        proxy.set_toxics(HOP, Toxics(latency_ms=150))
        assert await echo(stream) >= 0.3  # 150 ms each way, on the connection opened before
        proxy.set_toxics(HOP, Toxics())
        await echo(stream)
        assert upstream.accepted == 1
        await close(stream)

    run(scenario)


# resets, timeouts, partitions


@pytest.mark.usefixtures("leg")
def test_reset_makes_the_client_see_a_reset():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(Toxics(reset_percent=100))
        reader, writer = await connect(hop)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(65536), WAIT)  # an RST, not a polite EOF
        assert hop.stats()["resets_total"] == 1
        writer.close()

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_a_reset_after_ms_leaves_the_connection_working_until_it_comes():
    """Proven by what flows, not by a clock: the connection carries an echo first, then the
    reset arrives (reset_after_ms far longer than a loopback round trip)."""

    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(Toxics(reset_percent=100, reset_after_ms=3000))
        reader, writer = stream = await connect(hop)
        await echo(stream)
        assert hop.stats()["resets_total"] == 0
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(65536), WAIT)
        assert hop.stats()["resets_total"] == 1
        writer.close()

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_reset_rolls_for_connections_already_open_when_it_is_switched_on():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        stream = await connect(hop)
        await echo(stream)
        hop.set_toxics(Toxics(reset_percent=100))
        await assert_closed_by_proxy(stream[0])
        assert hop.stats()["resets_total"] == 1
        stream[1].close()

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_timeout_stalls_both_ways_then_lets_held_bytes_through_when_lifted():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        reader, writer = stream = await connect(hop)
        await echo(stream)
        hop.set_toxics(Toxics(timeout=True))
        writer.write(b"held")
        await assert_stalled(reader)
        assert len(upstream.arrivals) == 1  # not even the upstream got it
        hop.set_toxics(Toxics())
        assert await asyncio.wait_for(reader.readexactly(4), WAIT) == b"held"
        await close(stream)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_timeout_with_close_ms_closes_the_connection():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        reader, writer = stream = await connect(hop)
        await echo(stream)
        hop.set_toxics(Toxics(timeout=True, timeout_close_ms=3000))
        writer.write(b"lost")
        await assert_stalled(reader)  # held open first: no EOF, no bytes, for a while
        assert hop.stats()["timed_out_total"] == 0
        await assert_closed_by_proxy(reader)
        assert hop.stats()["timed_out_total"] == 1
        writer.close()

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_partition_blackholes_new_connections_stalls_open_ones_and_heals():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        before = await connect(hop)
        await echo(before)
        hop.set_toxics(Toxics(partition=True))

        before[1].write(b"a")
        await assert_stalled(before[0])
        during = await connect(hop)  # accepted: a partition times out, it does not refuse
        during[1].write(b"b")
        await assert_stalled(during[0])
        assert upstream.accepted == 1  # the new connection never reached the upstream
        assert hop.stats()["blackholed_total"] == 1

        hop.set_toxics(Toxics())
        assert await asyncio.wait_for(before[0].readexactly(1), WAIT) == b"a"
        assert await asyncio.wait_for(during[0].readexactly(1), WAIT) == b"b"
        after = await connect(hop)
        await echo(after)
        assert upstream.accepted == 3
        await close(before, during, after)

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_an_upstream_that_refuses_is_seen_by_the_client_as_a_reset():
    async def main() -> None:
        with socket.socket() as bound_not_listening:
            bound_not_listening.bind((LOOPBACK, 0))
            hops = [(HOP, (LOOPBACK, 0), bound_not_listening.getsockname())]
            async with FaultProxy(hops) as proxy:
                if upstream_leg == "in-process":
                    proxy.serve_in_process(lambda: None)  # a server that is stopping
                reader, writer = await connect(proxy.hop(HOP))
                await assert_closed_by_proxy(reader)
                await eventually(lambda: proxy.stats()[HOP]["connections_active"] == 0)
                assert proxy.stats()[HOP]["refused_total"] == 1
                writer.close()

    asyncio.run(main())


# memory, stats, stop


@pytest.mark.parametrize(
    "toxics",
    [Toxics(), Toxics(latency_ms=1), Toxics(latency_ms=60_000), Toxics(timeout=True)],
    ids=["plain", "shaped", "held-for-a-minute", "timed-out"],
)
@pytest.mark.usefixtures("leg")
def test_a_client_that_does_not_read_pushes_back_on_the_upstream(toxics):
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(toxics)
        stream = await connect(hop)
        await asyncio.wait_for(upstream.blocked.wait(), WAIT)
        await asyncio.sleep(STALL)  # the upstream keeps writing whenever the proxy reads
        # delayed chunks stop at the high-water mark plus one read (256 KiB); the send buffer
        # at asyncio's high-water mark (64 KiB) plus one write
        assert hop.stats()["bytes_held"] <= HIGH_WATER + 64 * 1024 + 2 * 256 * 1024
        await close(stream)

    run(scenario, flood=True)


@pytest.mark.usefixtures("leg")
def test_stats_count_connections_bytes_and_show_the_toxics():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        streams = [await connect(hop) for _ in range(3)]
        for size, stream in zip((10, 200, 3000), streams, strict=True):
            await echo(stream, b"x" * size)
        assert hop.stats()["connections_active"] == 3
        hop.set_toxics(Toxics(latency_ms=5, direction="downstream"))
        await close(*streams)
        await eventually(lambda: hop.stats()["connections_active"] == 0)

        stats = proxy.stats()[HOP]
        assert stats["connections_total"] == 3
        assert stats["bytes_upstream"] == stats["bytes_downstream"] == 3210
        assert stats["bytes_held"] == 0
        assert stats["listen"] == f"{LOOPBACK}:{hop.listen[1]}"
        assert stats["toxics"]["latency_ms"] == 5
        assert stats["toxics"]["direction"] == "downstream"

    run(scenario)


def test_stop_closes_listeners_and_connections_and_leaves_no_task():
    async def main() -> None:
        async with Upstream() as upstream:
            proxy = FaultProxy(
                [
                    ("gateway->orders", (LOOPBACK, 0), upstream.address),
                    ("orders->inventory", (LOOPBACK, 0), upstream.address),
                    ("orders->queue", (LOOPBACK, 0), full_listener.getsockname()),
                ]
            )
            await proxy.start()
            connecting = await connect(proxy.hop("orders->queue"))  # its upstream never answers
            open_one = await connect(proxy.hop("gateway->orders"))
            await echo(open_one)
            proxy.set_toxics("orders->inventory", Toxics(partition=True))
            blackholed = await connect(proxy.hop("orders->inventory"))
            delayed = await connect(proxy.hop("gateway->orders"))
            proxy.set_toxics("gateway->orders", Toxics(latency_ms=10_000))
            delayed[1].write(b"in flight")
            await asyncio.sleep(0.05)

            assert proxy.stats()["orders->queue"]["connections_active"] == 1
            await proxy.stop()
            assert asyncio.all_tasks() == {asyncio.current_task()}
            for reader, _ in (open_one, blackholed, delayed, connecting):
                await assert_closed_by_proxy(reader)
            for name in ("gateway->orders", "orders->inventory", "orders->queue"):
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.wait_for(asyncio.open_connection(*proxy.hop(name).listen), WAIT)
                assert proxy.stats()[name]["connections_active"] == 0
            await eventually(lambda: not upstream.connections)
            await close(open_one, blackholed, delayed, connecting)

    # a listener whose accept queue is full: connecting to it hangs in SYN_SENT
    with socket.socket() as full_listener, socket.socket() as queued:
        full_listener.bind((LOOPBACK, 0))
        full_listener.listen(0)
        queued.connect(full_listener.getsockname())
        asyncio.run(main())


# bad input


@pytest.mark.parametrize(
    ("field", "value", "bounds"),
    [
        ("latency_ms", -1, "from 0 to 60000 ms"),
        ("jitter_ms", float("nan"), "from 0 to 60000 ms"),
        ("bandwidth_kbps", -5, "from 0 to 1e+07 kbps"),
        ("loss_percent", 101, "from 0 to 100 %"),
        ("reset_percent", 150, "from 0 to 100 %"),
        ("reset_after_ms", "soon", "from 0 to 3.6e+06 ms"),
        ("retransmit_ms", True, "from 0 to 60000 ms"),
        ("timeout", 1, "true or false"),
        ("direction", "sideways", "upstream, downstream, both"),
    ],
)
def test_bad_toxics_are_refused_naming_the_field_and_its_bounds(field, value, bounds):
    with pytest.raises(ValueError, match=field) as raised:
        Toxics(**{field: value})
    assert bounds in str(raised.value)


def test_an_unknown_hop_is_a_key_error_listing_the_known_ones():
    proxy = FaultProxy(
        [
            ("gateway->orders", (LOOPBACK, 0), (LOOPBACK, 1)),
            ("orders->inventory", (LOOPBACK, 0), (LOOPBACK, 2)),
        ]
    )
    with pytest.raises(KeyError, match=r"'orders->cache'.*gateway->orders, orders->inventory"):
        proxy.hop("orders->cache")
    with pytest.raises(KeyError, match="orders->cache"):
        proxy.set_toxics("orders->cache", Toxics())
    with pytest.raises(TypeError, match="Toxics"):
        proxy.set_toxics("gateway->orders", {"latency_ms": 5})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hops", "message"),
    [
        ([("a->b", (LOOPBACK, 0), (LOOPBACK, 1))] * 2, "'a->b' is given twice"),
        ([("", (LOOPBACK, 0), (LOOPBACK, 1))], "non-empty"),
        ([("a->b", (LOOPBACK, 70000), (LOOPBACK, 1))], "listen port must be from 0 to 65535"),
        ([("a->b", (LOOPBACK, 0), (LOOPBACK, 0))], "upstream port must be from 1 to 65535"),
        ([("a->b", (LOOPBACK, 0), "localhost:80")], "upstream must be a \\(host, port\\)"),
    ],
)
def test_bad_hops_are_refused_with_the_reason(hops, message):
    with pytest.raises(ValueError, match=message):
        FaultProxy(hops)


# responses cut short (partial-response, connection-reset)


@pytest.mark.usefixtures("leg")
def test_limit_bytes_passes_that_many_bytes_back_then_closes_with_a_fin():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(Toxics(limit_bytes=10))
        reader, writer = stream = await connect(hop)
        await echo(stream, b"12345")
        writer.write(b"abcdefgh")
        got = await asyncio.wait_for(reader.read(65536), WAIT)
        assert got == b"abcde"  # 5 + 5 bytes came back, then the connection ended
        assert await asyncio.wait_for(reader.read(65536), WAIT) == b""  # a FIN, not an RST
        assert hop.stats()["limited_total"] == 1
        writer.close()

    run(scenario)


@pytest.mark.usefixtures("leg")
def test_reset_response_passes_the_first_bytes_of_a_response_then_resets():
    async def scenario(proxy: FaultProxy, hop: Hop, upstream: Upstream) -> None:
        hop.set_toxics(Toxics(reset_response_percent=100))
        reader, writer = await connect(hop)
        writer.write(b"response")
        assert await asyncio.wait_for(reader.read(65536), WAIT) == b"resp"  # half of it
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(65536), WAIT)  # then an RST, not a FIN
        assert hop.stats()["reset_responses_total"] == 1
        writer.close()

    run(scenario)
