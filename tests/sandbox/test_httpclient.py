"""The sandbox services' HTTP client against real sockets: keep-alive reuse, the pool
limit (callers wait, inside their timeout), and clear failures on bad answers."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sandbox.httpclient import ConnectionFailed, Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    listening = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        listening.close()
        await listening.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


def answer(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def test_keep_alive_connections_are_reused_and_json_round_trips():
    connections = 0
    seen: list[bytes] = []

    async def handler(reader, writer):
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                seen.append(await read_request(reader))
                writer.write(answer(b'{"ok": true}'))
                await writer.drain()

    async def scenario():
        async with server(handler) as port:
            pool = Pool("127.0.0.1", port, limit=2)
            first = await pool.request("POST", "/orders", json_body={"sku": "1"}, timeout=5)
            second = await pool.request("GET", "/stock/1", headers={"traceparent": "t"}, timeout=5)
            await pool.close()
            return first, second

    first, second = asyncio.run(scenario())
    assert first.json() == {"ok": True}
    assert second.status == 200
    assert connections == 1
    assert b'{"sku":"1"}' in seen[0]
    assert b"traceparent: t" in seen[1]


def test_a_full_pool_makes_callers_wait_and_the_wait_counts_in_the_timeout():
    release = asyncio.Event()

    async def handler(reader, writer):
        await read_request(reader)
        await release.wait()
        writer.write(answer(b"{}"))
        await writer.drain()
        writer.close()

    async def scenario():
        async with server(handler) as port:
            pool = Pool("127.0.0.1", port, limit=1)
            busy = asyncio.create_task(pool.request("GET", "/slow", timeout=5))
            await asyncio.sleep(0.1)
            assert pool.waiting == 0
            waiter = asyncio.create_task(pool.request("GET", "/queued", timeout=0.3))
            await asyncio.sleep(0.05)
            waiting = pool.waiting
            with pytest.raises(TimeoutError):
                await waiter
            release.set()
            done = await busy
            await pool.close()
            return waiting, done.status

    waiting, status = asyncio.run(scenario())
    assert waiting == 1
    assert status == 200


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed response"),
        (answer(b'{"cut": tr')[:-4], "connection closed"),  # body cut short, then closed
        (b"", "connection closed"),  # closed before any answer, on a new connection
    ],
)
def test_bad_answers_fail_clearly(reply, message):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def scenario():
        async with server(handler) as port:
            pool = Pool("127.0.0.1", port)
            try:
                await pool.request("GET", "/x", timeout=5)
            finally:
                await pool.close()

    with pytest.raises(ConnectionFailed, match=message):
        asyncio.run(scenario())


def test_a_body_that_is_not_json_raises_value_error():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(answer(b"<html>oops</html>"))
        await writer.drain()
        writer.close()

    async def scenario():
        async with server(handler) as port:
            pool = Pool("127.0.0.1", port)
            response = await pool.request("GET", "/x", timeout=5)
            await pool.close()
            return response

    response = asyncio.run(scenario())
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


def test_a_request_target_with_spaces_or_newlines_is_refused():
    pool = Pool("127.0.0.1", 9)

    async def scenario():
        await pool.request("GET", "/x\r\nInjected: yes", timeout=1)

    with pytest.raises(ValueError, match="not a request target"):
        asyncio.run(scenario())
