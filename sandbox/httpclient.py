"""A small HTTP/1.1 client for the calls between a sandbox's services.

Every user request crosses three to five hops, and a hundred sandboxes share two cores:
aiohttp's client spends several hundred microseconds of Python on each call, this one a
few tens. It does what the services need and no more: keep-alive connections in a pool
with a size limit (callers wait for a free connection, as with any client library, which
is what connection-pool exhaustion teaches), a total timeout that includes that wait,
JSON bodies, and responses framed by Content-Length or chunked encoding (httptools, the
parser uvicorn uses).

    pool = Pool("127.0.0.1", 17101, limit=10)
    response = await pool.request("GET", "/products/7", timeout=2.0)
    response.status, response.json()
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httptools


class ConnectionFailed(OSError):
    """The connection failed, was closed or reset before a whole response arrived, or the
    response was not HTTP."""


class Response:
    __slots__ = ("body", "headers", "keep_alive", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, keep_alive: bool):
        self.status = status
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def json(self) -> Any:
        """The decoded body; ValueError when it is not JSON."""
        return json.loads(self.body) if self.body else None


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._received = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # TCP: always a Transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionFailed(f"malformed response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionFailed(f"connection closed: {exc or 'by the peer'}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        response = Response(
            self._parser.get_status_code(),
            self._headers,
            b"".join(self._chunks),
            self._parser.should_keep_alive(),
        )
        waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def exchange(self, request: bytes) -> Response:
        if self.closed or self.transport is None:
            raise ConnectionFailed("connection closed: by the peer")
        self.used = True
        self._headers, self._chunks, self._received = {}, [], False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    @property
    def answered_nothing(self) -> bool:
        return not self._received

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Connections to one host and port. `limit` caps how many are open at once (0: no
    cap); a call that finds them all busy waits for one, inside its timeout."""

    def __init__(self, host: str, port: int, limit: int = 0) -> None:
        self.host = host
        self.port = port
        self.limit = limit
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None
        self._host_header = f"Host: {host}:{port}\r\n"
        self._closed = False
        # A name to look up for each new connection (None: `host` is an address already).
        self.resolve: Callable[[str], Awaitable[str]] | None = None
        self.keep_alive = True  # False: a new connection (and lookup) for every request

    @classmethod
    def for_url(cls, url: str, limit: int = 0) -> Pool:
        """From "http://host:port" (the form Topology gives)."""
        address = url.split("://", 1)[-1].rstrip("/")
        host, _, port = address.rpartition(":")
        return cls(host, int(port), limit)

    @property
    def waiting(self) -> int:
        """Calls waiting for a free connection."""
        waiters = getattr(self._slots, "_waiters", None)
        return len(waiters) if waiters else 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Sends one request and reads the whole response. Raises TimeoutError when
        `timeout` seconds pass (waiting for a connection included) and ConnectionFailed
        when the connection fails."""
        if self._closed:
            raise ConnectionFailed("the pool is closed")
        message = self._encode(method, path, json_body, headers)
        async with asyncio.timeout(timeout):
            if self._slots is not None:
                await self._slots.acquire()
            try:
                return await self._send(message)
            finally:
                if self._slots is not None:
                    self._slots.release()

    async def _send(self, message: bytes) -> Response:
        while True:
            connection, reused = await self._connection()
            try:
                response = await connection.exchange(message)
            except ConnectionFailed:
                connection.close()
                # A kept-alive connection the server closed while it sat idle: the request
                # never reached anyone, so it is sent again on a new connection.
                if reused and connection.answered_nothing:
                    continue
                raise
            except BaseException:  # a timeout or a cancellation mid-exchange
                connection.close()
                raise
            if response.keep_alive and self.keep_alive and not self._closed:
                self._idle.append(connection)
            else:
                connection.close()
            return response

    async def _connection(self) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
        loop = asyncio.get_running_loop()
        host = await self.resolve(self.host) if self.resolve is not None else self.host
        _, protocol = await loop.create_connection(_Connection, host, self.port)
        return protocol, False

    def _encode(
        self, method: str, path: str, json_body: Any, headers: dict[str, str] | None
    ) -> bytes:
        if any(c in path for c in " \r\n"):
            raise ValueError(f"not a request target: {path!r}")
        lines = [f"{method} {path} HTTP/1.1\r\n", self._host_header]
        if headers:
            lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if json_body is None:
            if method in ("POST", "PUT", "PATCH"):
                lines.append("Content-Length: 0\r\n")
            lines.append("\r\n")
            return "".join(lines).encode("latin-1")
        body = json.dumps(json_body, separators=(",", ":")).encode()
        lines.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        return "".join(lines).encode("latin-1") + body

    async def close(self) -> None:
        """Closes the idle connections; busy ones close when their exchange ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
