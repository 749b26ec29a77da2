"""The services' lean HTTP server, over real sockets: it serves an aiohttp application's
routes and middleware as aiohttp would, and answers bad requests clearly."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from sandbox.httpclient import Pool
from sandbox.server import Server, json_response


def shop() -> tuple[web.Application, list[str], set[int]]:
    seen: list[str] = []
    connections: set[int] = set()

    @web.middleware
    async def route_of(request, handler):
        resource = request.match_info.route.resource
        seen.append(resource.canonical if resource else "unmatched")
        connections.add(id(request.transport))
        request["tag"] = "tagged"
        return await handler(request)

    async def product(request):
        return web.json_response(
            {
                "sku": request.match_info["sku"],
                "page": request.query.get("page"),
                "tag": request["tag"],
                "trace": request.headers.get("traceparent"),
            }
        )

    async def order(request):
        body = await request.json()
        if body.get("quantity", 0) < 1:
            raise web.HTTPUnprocessableEntity(
                text='{"message": "quantity must be at least 1"}', content_type="application/json"
            )
        return web.json_response({"ordered": body["quantity"]}, status=201)

    async def broken(_):
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[route_of])
    app.add_routes(
        [
            web.get("/products/{sku}", product),
            web.post("/orders", order),
            web.get("/broken", broken),
        ]
    )
    return app, seen, connections


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    server = Server(app)
    await server.start("127.0.0.1", 0)
    try:
        yield server.port
    finally:
        await server.stop()


def test_routes_middleware_and_answers_are_aiohttps():
    app, seen, connections = shop()

    async def scenario():
        async with serving(app) as port:
            pool = Pool("127.0.0.1", port, limit=1)  # one connection: keep-alive reused
            try:
                product = await pool.request(
                    "GET", "/products/sku%2D7?page=2", headers={"traceparent": "00-ab-cd-01"}
                )
                ordered = await pool.request("POST", "/orders", json_body={"quantity": 3})
                refused = await pool.request("POST", "/orders", json_body={"quantity": 0})
                missing = await pool.request("GET", "/nowhere")
                wrong_method = await pool.request("DELETE", "/orders")
                broken = await pool.request("GET", "/broken")
                return product, ordered, refused, missing, wrong_method, broken
            finally:
                await pool.close()

    product, ordered, refused, missing, wrong_method, broken = asyncio.run(scenario())
    assert product.status == 200
    assert product.json() == {"sku": "sku-7", "page": "2", "tag": "tagged", "trace": "00-ab-cd-01"}
    assert product.headers["content-type"] == "application/json; charset=utf-8"
    assert (ordered.status, ordered.json()) == (201, {"ordered": 3})
    assert refused.status == 422
    assert refused.json() == {"message": "quantity must be at least 1"}
    assert missing.status == 404
    assert wrong_method.status == 405
    assert broken.status == 500
    assert len(connections) == 1  # one keep-alive connection served them all
    assert seen == ["/products/{sku}", "/orders", "/orders", "unmatched", "unmatched", "/broken"]


def test_a_request_that_is_not_http_gets_a_400_and_the_connection_closes():
    app, _, _ = shop()

    async def scenario():
        async with serving(app) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_a_handler_sees_its_client_leave():
    left = asyncio.Event()

    async def long_poll(request):
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.01)
        left.set()
        return web.json_response({})

    app = web.Application()
    app.add_routes([web.get("/wait", long_poll)])

    async def scenario():
        async with serving(app) as port:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await asyncio.wait_for(left.wait(), timeout=5)
            return left.is_set()

    assert asyncio.run(scenario())


def test_head_slashes_in_values_big_bodies_and_bugs_are_answered_as_aiohttp_would(capsys):
    app, _, _ = shop()

    async def scenario():
        async with serving(app) as port:
            pool = Pool("127.0.0.1", port, limit=1)
            try:
                slashed = await pool.request("GET", "/products/a%2Fb")
                broken = await pool.request("GET", "/broken")
            finally:
                await pool.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"HEAD /products/7 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /products/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            head_then_get = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
            too_big = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            return head_then_get, slashed, broken, too_big

    head_then_get, slashed, broken, too_big = asyncio.run(scenario())
    head, after_head = head_then_get.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert after_head.startswith(b"HTTP/1.1 200 OK")  # no body after the HEAD's headers
    assert after_head.endswith(b'"sku": "7", "page": null, "tag": "tagged", "trace": null}')
    assert slashed.json()["sku"] == "a/b"
    assert broken.status == 500
    assert "RuntimeError('a bug')" in capsys.readouterr().err  # the bug is logged
    assert too_big.startswith(b"HTTP/1.1 413 ")


def test_stopping_lets_a_request_being_served_finish():
    started = asyncio.Event()

    async def slow(_):
        started.set()
        await asyncio.sleep(0.3)
        return web.json_response({"done": True})

    app = web.Application()
    app.add_routes([web.get("/slow", slow)])

    async def scenario():
        server = Server(app)
        await server.start("127.0.0.1", 0)
        pool = Pool("127.0.0.1", server.port)
        try:
            answer = asyncio.create_task(pool.request("GET", "/slow", timeout=5))
            await started.wait()
            await server.stop()
            return await answer
        finally:
            await pool.close()

    answer = asyncio.run(scenario())
    assert (answer.status, answer.json()) == (200, {"done": True})


def test_one_application_is_served_on_a_unix_socket_and_tcp_at_once(tmp_path):
    """As the supervisor serves its control API: a Unix socket, and TCP when a backend
    asks for it. The application starts once and stopping closes both."""
    started: list[str] = []
    app, _, _ = shop()

    async def on_startup(_):
        started.append("startup")

    app.on_startup.append(on_startup)
    path = str(tmp_path / "control.sock")

    async def ask(reader, writer) -> bytes:
        writer.write(b"GET /products/9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        return answer

    async def scenario():
        server = Server(app)
        await server.start_unix(path)
        await server.start("127.0.0.1", 0)
        port = server.port
        try:
            over_unix = await ask(*await asyncio.open_unix_connection(path))
            over_tcp = await ask(*await asyncio.open_connection("127.0.0.1", port))
        finally:
            await server.stop()
        refused = []
        for opening in (
            lambda: asyncio.open_unix_connection(path),
            lambda: asyncio.open_connection("127.0.0.1", port),
        ):
            try:
                await opening()
            except OSError:
                refused.append(True)
        return over_unix, over_tcp, refused

    over_unix, over_tcp, refused = asyncio.run(scenario())
    for answer in (over_unix, over_tcp):
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b'"sku": "9"' in answer
    assert started == ["startup"]
    assert refused == [True, True]


def test_a_lean_json_response_is_answered_byte_for_byte_as_aiohttps():
    """`json_response` skips aiohttp's Response machinery, not what the client reads."""

    def app_answering(make) -> web.Application:
        async def answer(request):
            status = int(request.query.get("status", "200"))
            return make({"sku": "7", "stock": [1, 2], "note": "é"}, status=status)

        app = web.Application()
        app.add_routes([web.get("/x", answer)])  # HEAD too, as aiohttp adds it
        return app

    async def raw(port: int, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    requests = [
        b"GET /x HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
        b"GET /x?status=507 HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
        b"GET /x?status=299 HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
    ]

    async def answers(make) -> list[bytes]:
        async with serving(app_answering(make)) as port:
            return [await raw(port, request) for request in requests]

    lean = asyncio.run(answers(json_response))
    aiohttps = asyncio.run(answers(web.json_response))
    assert lean == aiohttps
    assert lean[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/json; charset=utf-8\r\n" in lean[0]
    assert lean[0].endswith(b'{"sku": "7", "stock": [1, 2], "note": "\\u00e9"}')
    assert lean[1].startswith(b"HTTP/1.1 507 Insufficient Storage\r\n")
    assert lean[3].endswith(b"\r\n\r\n")  # a HEAD answer has no body
