"""A lean HTTP/1.1 server for a sandbox's services and its supervisor's control API.

Every user request crosses three to five services, and a hundred sandboxes share two
cores: aiohttp's server machinery spent about 0.4 ms of Python per request (request and
response objects, routing, the writer), more than a cache lookup's handler. This server
serves the same `web.Application` (its routes, middlewares and startup and cleanup
signals; handlers keep taking a request and returning a `web.Response` or raising an
`HTTPException`) over a protocol of its own: httptools parses, a table routes, and a
response goes out in one write.

It offers handlers what the services use of aiohttp's request: `method`, `path`,
`query`, `headers`, `match_info` (with `route.resource.canonical`), `read()`, `json()`,
`can_read_body`, `transport` (None once the client has gone) and item storage.
Handlers answer with aiohttp's responses, or with `json_response` from here: the same
status and JSON body without aiohttp's Response machinery (a header multidict, charset
and payload objects), which cost a cache lookup's handler as much again.
As aiohttp does: requests on one connection are served in order; a handler is not
cancelled when its client goes away; a HEAD answer has no body; `%2F` in a path does not
split it (the value matched keeps the slash); a body over 1 MiB gets a 413; a handler's
exception is logged and answered with a 500; stopping lets requests being served finish
(for up to `STOP_GRACE_S`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sys
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, unquote

import httptools
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

Handler = Callable[[Any], Awaitable[web.StreamResponse]]
JSON_HEADERS: Mapping[str, str] = MappingProxyType(
    {"Content-Type": "application/json; charset=utf-8"}
)


class JsonResponse:
    """A status and a JSON body, as `web.json_response` makes them, for the lean server."""

    __slots__ = ("body", "status")
    headers = JSON_HEADERS

    def __init__(self, body: bytes, status: int) -> None:
        self.body = body
        self.status = status

    @property
    def reason(self) -> str:
        return _reason(self.status)

    @property
    def text(self) -> str:
        return self.body.decode()


def json_response(data: Any, *, status: int = 200) -> Any:
    """`web.json_response(data, status=status)` for a handler served here. Typed as Any,
    as a handler's web.Response: what the middlewares read of it (status) it has."""
    return JsonResponse(json.dumps(data).encode(), status)


@functools.cache
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


MAX_BODY_BYTES = 2**20
MAX_PIPELINED = 64  # requests read ahead on one connection before it is closed
STOP_GRACE_S = 5.0


class Resource:
    __slots__ = ("canonical",)

    def __init__(self, canonical: str) -> None:
        self.canonical = canonical


class Route:
    __slots__ = ("resource",)

    def __init__(self, resource: Resource | None) -> None:
        self.resource = resource


UNMATCHED = Route(None)


class MatchInfo(dict[str, str]):
    __slots__ = ("route",)

    def __init__(self, route: Route, parameters: dict[str, str]) -> None:
        super().__init__(parameters)
        self.route = route


class Request(MutableMapping[str, Any]):
    """The part of aiohttp's request the services' handlers use."""

    __slots__ = (
        "_body",
        "_connection",
        "_query",
        "_query_string",
        "_state",
        "headers",
        "match_info",
        "method",
        "path",
    )

    def __init__(
        self,
        connection: _Connection,
        method: str,
        path: str,
        query_string: str,
        headers: CIMultiDictProxy[str],
        body: bytes,
    ) -> None:
        self._connection = connection
        self.method = method
        self.path = path
        self._query_string = query_string
        self._query: MultiDictProxy[str] | None = None
        self.headers = headers
        self._body = body
        self._state: dict[str, Any] = {}
        self.match_info = MatchInfo(UNMATCHED, {})

    @property
    def query(self) -> MultiDictProxy[str]:
        if self._query is None:
            pairs = parse_qsl(self._query_string, keep_blank_values=True)
            self._query = MultiDictProxy(MultiDict(pairs))
        return self._query

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._connection.transport

    @property
    def can_read_body(self) -> bool:
        return bool(self._body)

    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode()

    async def json(self) -> Any:
        return json.loads(self._body)

    # item storage, as aiohttp's request offers
    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)


class Router:
    """aiohttp's routes, matched by a dict for fixed paths and a regex per pattern."""

    def __init__(self, app: web.Application) -> None:
        self.fixed: dict[tuple[str, str], tuple[Route, Handler]] = {}
        self.patterns: list[tuple[str, re.Pattern[str], Route, Handler]] = []
        self.paths: dict[str, set[str]] = {}  # canonical path -> methods, for 405
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            canonical = route.resource.canonical if route.resource is not None else ""
            ours = Route(Resource(canonical))
            self.paths.setdefault(canonical, set()).add(route.method)
            if "path" in info:
                self.fixed[(route.method, canonical)] = (ours, route.handler)
            else:  # aiohttp's own pattern for the resource, matched as it matches it
                self.patterns.append((route.method, info["pattern"], ours, route.handler))

    def resolve(self, request: Request, safe_path: str) -> Handler:
        """`safe_path`: decoded but for %2F and %25, which aiohttp matches on too."""
        found = self.fixed.get((request.method, safe_path))
        if found is not None:
            request.match_info = MatchInfo(found[0], {})
            return found[1]
        allowed: set[str] = set(self.paths.get(safe_path, ()))
        for method, regex, route, handler in self.patterns:
            match = regex.fullmatch(safe_path)
            if match is None:
                continue
            if method == request.method:
                values = {k: unquote(v) for k, v in match.groupdict().items()}
                request.match_info = MatchInfo(route, values)
                return handler
            allowed.add(method)
        if allowed:
            return _refuse(web.HTTPMethodNotAllowed(request.method, sorted(allowed)))
        return _refuse(web.HTTPNotFound())


def _refuse(answer: web.HTTPException) -> Handler:
    async def refuse(_: Any) -> web.StreamResponse:
        raise answer

    return refuse


class Server:
    """Serves one `web.Application` on a TCP port, a Unix socket, or several of them."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.router = Router(app)
        self.middlewares = list(app.middlewares)
        self.connections: set[_Connection] = set()
        self.serving: set[asyncio.Task[None]] = set()
        self.listeners: list[asyncio.Server] = []
        self.started = False
        self.stopping = False

    async def start(self, host: str, port: int) -> None:
        """Listens on TCP (the application's startup runs before the first listener)."""
        await self._startup()
        loop = asyncio.get_running_loop()
        self.listeners.append(
            await loop.create_server(
                lambda: _Connection(self), host, port, reuse_address=True, backlog=512
            )
        )

    async def start_unix(self, path: str) -> None:
        """Listens on a Unix socket at `path`."""
        await self._startup()
        loop = asyncio.get_running_loop()
        self.listeners.append(
            await loop.create_unix_server(lambda: _Connection(self), path, backlog=512)
        )

    async def _startup(self) -> None:
        if not self.started:
            self.started = True
            for callback in self.app.on_startup:
                await callback(self.app)

    def connection(self) -> asyncio.Protocol | None:
        """A new connection's protocol, for a caller in this process that brings its own
        transport (a hop's in-process leg); None once the server is stopping."""
        return None if self.stopping else _Connection(self)

    @property
    def port(self) -> int:
        """The TCP port it listens on (the one the OS chose when started on port 0)."""
        for listener in self.listeners:
            address = listener.sockets[0].getsockname()
            if isinstance(address, tuple):
                return int(address[1])
        raise RuntimeError("the server does not listen on TCP")

    async def stop(self) -> None:
        """Takes no new connections, lets the requests being served finish, then runs the
        application's cleanup (which closes what those requests use)."""
        self.stopping = True
        for listener in self.listeners:
            listener.close()
        for connection in list(self.connections):
            if not connection.serving and connection.transport is not None:
                connection.transport.close()
        if self.serving:
            await asyncio.wait(set(self.serving), timeout=STOP_GRACE_S)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        for callback in self.app.on_cleanup:
            await callback(self.app)

    async def answer(self, request: Request, safe_path: str) -> web.StreamResponse:
        handler = self.router.resolve(request, safe_path)
        for middleware in reversed(self.middlewares):
            handler = _wrapped(middleware, handler)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return exc
        except Exception as exc:  # a bug in a handler: logged, and a 500 as aiohttp answers
            line = {
                "level": "error",
                "message": "request failed in the server",
                "path": request.path,
                "error": repr(exc),
                "traceback": traceback.format_exc(),
            }
            sys.stderr.write(json.dumps(line) + "\n")
            return web.Response(status=500, text="500: Internal Server Error")


def _wrapped(middleware: Any, handler: Handler) -> Handler:
    async def call(request: Any) -> web.StreamResponse:
        response: web.StreamResponse = await middleware(request, handler)
        return response

    return call


class _Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.pending: deque[tuple[Request, str, bool]] = deque()
        self.serving = False
        self.size = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            # httptools wraps what a callback raised
            too_large = isinstance(exc.__context__, _TooLarge)
            self.refuse(b"413 Request Entity Too Large" if too_large else b"400 Bad Request")

    def refuse(self, status: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        for name, value in self.headers:  # refused before the body is sent, when it says
            if name.lower() == "content-length" and int(value or 0) > MAX_BODY_BYTES:
                raise _TooLarge

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY_BYTES:
            raise _TooLarge
        self.body.append(body)

    def on_message_complete(self) -> None:
        parsed = httptools.parse_url(self.url)
        raw = parsed.path.decode("utf-8", "replace")
        request = Request(
            self,
            self.parser.get_method().decode(),
            unquote(raw),
            (parsed.query or b"").decode("latin-1"),
            CIMultiDictProxy(CIMultiDict(self.headers)),
            b"".join(self.body),
        )
        if len(self.pending) >= MAX_PIPELINED:
            self.refuse(b"503 Service Unavailable")
            return
        self.pending.append((request, _safe(raw), self.parser.should_keep_alive()))
        if not self.serving:
            self.serving = True
            task = asyncio.get_running_loop().create_task(self.serve())
            self.server.serving.add(task)
            task.add_done_callback(self.server.serving.discard)

    async def serve(self) -> None:
        try:
            while self.pending:
                request, safe_path, keep_alive = self.pending.popleft()
                response = await self.server.answer(request, safe_path)
                if self.transport is None or self.transport.is_closing():
                    return
                self.transport.write(_encoded(response, keep_alive, request.method != "HEAD"))
                if not keep_alive:
                    self.transport.close()
                    return
        finally:
            self.serving = False


class _TooLarge(Exception):
    """A request body over MAX_BODY_BYTES."""


def _safe(raw: str) -> str:
    """The path decoded except for %2F and %25: a slash inside a value stays inside it."""
    if "%" not in raw:
        return raw
    return "%2F".join(
        "%25".join(unquote(part) for part in re.split("%25", piece))
        for piece in re.split("%2[fF]", raw)
    )


def _encoded(response: Any, keep_alive: bool, with_body: bool = True) -> bytes:
    if type(response) is JsonResponse:
        close = "" if keep_alive else "Connection: close\r\n"
        head = (
            f"HTTP/1.1 {response.status} {response.reason}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(response.body)}\r\n{close}\r\n"
        )
        return head.encode("latin-1") + (response.body if with_body else b"")
    body = getattr(response, "body", None)
    if body is None:
        data = b""
    elif isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
    else:  # a payload object: aiohttp keeps the bytes as its value
        data = bytes(body._value)
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    lines += [
        f"{name}: {value}"
        for name, value in response.headers.items()
        if name.lower() not in ("content-length", "connection")
    ]
    lines.append(f"Content-Length: {len(data)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (data if with_body else b"")
