"""The dependency clients' name resolution: a lookup per new connection, failures that
fail the connection, and a cache that keeps answers for their TTL."""

import asyncio

import pytest

from sandbox.httpclient import Pool
from sandbox.resolver import ResolutionFailed, Resolver
from tests.sandbox.test_httpclient import answer, read_request, server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lookups_fail_as_often_as_the_name_server_and_a_cache_keeps_answers():
    outcomes: list[str] = []
    clock = Clock()
    resolver = Resolver({"inventory.shop.internal": "127.0.0.1"}, outcomes.append, clock)

    async def scenario() -> None:
        resolver.failure_ratio = 1.0
        with pytest.raises(ResolutionFailed):
            await resolver.resolve("inventory.shop.internal")
        resolver.failure_ratio, resolver.ttl_s = 0.0, 10.0
        assert await resolver.resolve("inventory.shop.internal") == "127.0.0.1"
        resolver.failure_ratio = 1.0  # the name server fails, the cached answer holds
        assert await resolver.resolve("inventory.shop.internal") == "127.0.0.1"
        clock.now = 11.0  # expired: asked again, and it fails
        with pytest.raises(ResolutionFailed):
            await resolver.resolve("inventory.shop.internal")
        with pytest.raises(ResolutionFailed):
            await resolver.resolve("unknown.shop.internal")

    asyncio.run(scenario())
    assert outcomes == ["failed", "ok", "cached", "failed", "failed"]


def test_without_keep_alive_every_request_opens_a_connection_and_looks_its_name_up():
    connections = 0
    lookups: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await read_request(reader)
                writer.write(answer(b"{}"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def scenario() -> None:
        async with server(handler) as port:
            resolver = Resolver({"cache.shop.internal": "127.0.0.1"}, lookups.append)
            pool = Pool("cache.shop.internal", port)
            pool.resolve = resolver.resolve
            for _ in range(3):
                await pool.request("GET", "/", timeout=2)
            pool.keep_alive = False
            for _ in range(3):
                await pool.request("GET", "/", timeout=2)
            await pool.close()

    asyncio.run(scenario())
    # One kept alive for four requests (the fourth closes it), then one per request.
    assert connections == 3
    assert lookups == ["ok"] * 3
