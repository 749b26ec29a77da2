"""Stock in a real SQLite database: a pool of connections, a thread pool running the
queries, an index on products.sku that can be dropped and added back."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from sandbox.knobs import knobs_fingerprint
from sandbox.mechanisms import Pool, Rejected
from sandbox.server import json_response
from sandbox.services import stock_transactions as txn
from sandbox.services.base import (
    Service,
    data_dir,
    disk_quota_bytes,
    disk_used_bytes,
)
from sandbox.services.descriptors import Descriptors
from sandbox.services.inprocess import GcPressure, LockTable
from sandbox.services.product_answer import product_record, rank
from sandbox.services.products_db import INDEX_SQL
from sandbox.services.reservations import Reservations, VersionConflict
from sandbox.services.warmup import STARTUP_KNOBS, PriceTable

T = TypeVar("T")


class Inventory(Service):
    name = "inventory"

    def __init__(self, *args: Any, database: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.database = database
        self.pool: Pool[sqlite3.Connection] | None = None
        self.threads = ThreadPoolExecutor(max_workers=self.threads_wanted())
        self.threads_busy = 0
        self.threads_queued = 0
        self.queries = self.metrics.counter(
            "sdlab_db_queries", "Database queries, by query.", ["service", "query"]
        )
        self.query_seconds = self.metrics.counter(
            "sdlab_db_query_seconds",
            "Time spent running queries, by query.",
            ["service", "query"],
        )
        self.index_present = self.metrics.gauge(
            "sdlab_db_index_present", "1 when products.sku is indexed.", ["service"]
        )
        self.thread_busy = self.metrics.gauge(
            "sdlab_threadpool_busy", "Threads running work.", ["service"]
        )
        self.thread_queued = self.metrics.gauge(
            "sdlab_threadpool_queued", "Work waiting for a thread.", ["service"]
        )
        self.thread_size = self.metrics.gauge(
            "sdlab_threadpool_size", "Threads the pool may run at once.", ["service"]
        )
        self.thread_size.labels(self.name).set(self.threads_wanted())
        self.search_comparisons = self.metrics.counter(
            "sdlab_search_comparisons",
            "Comparisons made ranking search results.",
            ["service"],
        )
        self.price_table = PriceTable(
            self.name, self.metrics, self.connect, Path(data_dir()) / "inventory-startup.json"
        )
        self.knobs.update(self.price_table.startup_knobs())
        self.metrics.knobs_fingerprint.labels(self.name).set(knobs_fingerprint(self.knobs))
        self.descriptors = Descriptors(
            self.name, self.metrics, os.path.join(data_dir(), "inventory-audit.log")
        )
        # Connections a transaction forgot to give back: (since, query, pool, connection).
        self.abandoned: list[tuple[float, str, Pool[sqlite3.Connection], sqlite3.Connection]] = []
        self.connections_leaked = self.metrics.counter(
            "sdlab_pool_leaked", "Connections never given back to a pool.", ["service", "pool"]
        )
        self.reclaimed = self.metrics.counter(
            "sdlab_pool_reclaimed",
            "Abandoned connections the pool took back.",
            ["service", "pool"],
        )
        self.reservations = Reservations(self)  # concurrency scenarios: how stock is taken
        # dbperf scenarios: transactions, in-process lock, GC pauses, payload size
        self.transactions = txn.TransactionMetrics(self.metrics)
        self.locks = LockTable(self.metrics)
        self.gc_pressure = GcPressure(self.metrics)
        self.response_bytes = self.metrics.counter(
            "sdlab_response_bytes", "Bytes of the answers sent, by route.", ["service", "route"]
        )

    async def _health(self, request: web.Request) -> web.Response:
        """Not ready while warming up behind the readiness gate."""
        warming = self.price_table.warming
        if warming is not None and not warming.done():
            return json_response({"service": self.name, "ok": False}, status=503)
        return await super()._health(request)

    def threads_wanted(self) -> int:
        return max(int(self.knobs["threadpool_size"]), int(self.knobs["threadpool_floor"]))

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/stock/{sku}", self.stock),
            web.post("/reserve", self.reserve),
            web.post("/ship", self.ship),
            web.get("/search", self.search),
        ]

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.database, check_same_thread=False, timeout=5, isolation_level=None
        )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def pool_build(self) -> None:
        size = int(self.knobs["db_pool_size"])
        old = self.pool
        self.pool = Pool(
            [self.connect() for _ in range(size)], float(self.knobs["db_pool_timeout_ms"]) / 1000
        )
        if old is not None:
            for connection in list(old.free):
                connection.close()
        self.metrics.pool_size.labels(self.name, "db").set(size)

    async def on_start(self) -> None:
        self.pool_build()
        await self.index_apply()
        self.background.append(asyncio.create_task(self.gauges()))
        await self.reservations.start()
        self.price_table.start(self.knobs)

    async def on_knobs(self, changed: dict[str, Any]) -> None:
        if "db_pool_size" in changed:
            self.pool_build()
        if "db_pool_timeout_ms" in changed and self.pool is not None:
            self.pool.timeout_s = float(self.knobs["db_pool_timeout_ms"]) / 1000
        if "threadpool_size" in changed or "threadpool_floor" in changed:
            old = self.threads
            self.threads = ThreadPoolExecutor(max_workers=self.threads_wanted())
            old.shutdown(wait=False)
            self.thread_size.labels(self.name).set(self.threads_wanted())
        if "db_index" in changed:
            await self.index_apply()
        if {"fd_limit", "fd_leak_per_query", "fd_leak_fixed"} & set(changed):
            self.descriptors.apply(self.knobs)
        if set(STARTUP_KNOBS) & set(changed):
            self.price_table.startup_knobs_save(self.knobs)
        if changed.keys() & {"stock_ledger", "hot_row_txn_ms"}:
            await self.tables_prepare()
        if changed.keys() & {"gc_heap_objects", "gc_freeze"}:
            k = self.knobs
            self.gc_pressure.configure(int(k["gc_heap_objects"]), bool(k["gc_freeze"]))
        if "db_reclaim_after_ms" in changed:
            self.abandoned_reclaim()
            self.reclaim_schedule()
        if "db_leak_ratio" in changed and not self.knobs["db_leak_ratio"]:
            # The leak switched off stands for the fix deployed: a fresh process has them all.
            for _, _, pool, connection in self.abandoned:
                if pool is self.pool:
                    pool.release(connection)
                else:
                    connection.close()
            self.abandoned = []

    async def index_apply(self) -> None:
        wanted = bool(self.knobs["db_index"])
        statement = INDEX_SQL if wanted else "DROP INDEX IF EXISTS idx_products_sku"
        db = self.connect()
        try:
            await asyncio.get_running_loop().run_in_executor(None, db.execute, statement)
        finally:
            db.close()
        self.index_present.labels(self.name).set(1 if wanted else 0)
        self.logs.log(
            "info", "index " + ("created" if wanted else "dropped"), table="products", column="sku"
        )

    async def tables_prepare(self) -> None:
        """The ledger's file and table, and the shop's counter row, made once when needed."""
        db = self.connect()

        def prepare() -> None:
            if self.knobs["stock_ledger"]:
                txn.ledger_prepare(db, self.ledger_path)
            if self.knobs["hot_row_txn_ms"]:
                txn.counter_prepare(db)

        try:
            await asyncio.get_running_loop().run_in_executor(None, prepare)
        finally:
            db.close()

    @property
    def ledger_path(self) -> Path:
        return self.database.with_name("ledger.db")

    async def gauges(self) -> None:
        while True:
            self.abandoned_reclaim()
            if self.pool is not None:
                self.metrics.pool_in_use.labels(self.name, "db").set(self.pool.in_use)
                self.metrics.pool_waiting.labels(self.name, "db").set(len(self.pool.waiters))
            self.thread_busy.labels(self.name).set(self.threads_busy)
            self.thread_queued.labels(self.name).set(self.threads_queued)
            self.descriptors.count()
            await self.figures_due()

    def reclaim_schedule(self) -> None:
        """A reclaim runs when the connection just leaked has been held for the limit, so the
        pool's waiters get it back on time even when no request comes to trigger it."""
        after = float(self.knobs["db_reclaim_after_ms"]) / 1000
        if after > 0:
            asyncio.get_running_loop().call_later(after + 0.01, self.abandoned_reclaim)

    def abandoned_reclaim(self) -> None:
        """With `db_reclaim_after_ms` set, the pool takes back connections held longer than
        that (as Tomcat's removeAbandoned does); a reclaimed connection of an old pool closes."""
        after = float(self.knobs["db_reclaim_after_ms"]) / 1000
        if after <= 0:
            return
        now, kept = time.monotonic(), []
        for since, query, pool, connection in self.abandoned:
            if now - since < after:
                kept.append((since, query, pool, connection))
                continue
            if pool is self.pool:
                pool.release(connection)
            else:
                connection.close()
            self.reclaimed.labels(self.name, "db").inc()
            self.logs.log(
                "warning",
                "abandoned connection reclaimed",
                pool="db",
                query=query,
                held_ms=round((now - since) * 1000),
            )
        self.abandoned = kept

    def bad_config_check(self) -> None:
        """A bad config read on the Nth request kills the process: a real exit, the
        supervisor restarts it (with backoff) and the same config kills it again."""
        after = int(self.knobs["bad_config_crash_after"])
        if not after or self.knobs["config_rollback"] or self.served < after:
            return
        fatal = {
            "level": "error",
            "service": self.name,
            "message": "fatal: invalid config: pool timeout 'ten' is not a number",
            "served": self.served,
        }
        sys.stderr.write(json.dumps(fatal) + "\n")
        sys.stderr.flush()
        os._exit(78)  # EX_CONFIG

    async def run(self, query: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Borrows a connection from the pool, runs `work` on a pool thread, gives it back."""
        if self.abandoned:
            self.abandoned_reclaim()
        self.bad_config_check()
        self.descriptors.audit(self.knobs, f"{self.now():.3f} {query}")
        self.gc_pressure.churn(int(self.knobs["gc_churn_objects"]), self.knobs["gc_acyclic"])
        pool = self.pool
        if pool is None:
            raise Rejected("the database pool is not open yet")
        try:
            connection = await pool.acquire()
        except Rejected:
            self.metrics.pool_timeouts.labels(self.name, "db").inc()
            raise
        self.metrics.pool_in_use.labels(self.name, "db").set(pool.in_use)
        self.threads_queued += 1

        io_s = float(self.knobs["db_io_ms"]) / 1000

        def timed() -> tuple[T, float]:
            self.threads_queued -= 1
            self.threads_busy += 1
            started = time.perf_counter()
            try:
                if io_s > 0:
                    time.sleep(io_s)  # a slow disk: the thread is blocked, not the loop
                return work(connection), time.perf_counter() - started
            finally:
                self.threads_busy -= 1

        try:
            result, seconds = await asyncio.get_running_loop().run_in_executor(self.threads, timed)
            self.queries.labels(self.name, query).inc()
            self.query_seconds.labels(self.name, query).inc(seconds)
            hold = float(self.knobs["db_hold_ms"])
            if hold > 0:
                await asyncio.sleep(
                    hold / 1000
                )  # a transaction left open: the connection stays taken
            return result
        finally:
            leak = float(self.knobs["db_leak_ratio"])
            if leak and random.random() < leak:  # noqa: S311
                # A code path that forgets to close: the connection stays checked out.
                self.abandoned.append((time.monotonic(), query, pool, connection))
                self.connections_leaked.labels(self.name, "db").inc()
                self.reclaim_schedule()
            elif self.pool is pool:
                pool.release(connection)
            else:
                connection.close()
            self.metrics.pool_in_use.labels(self.name, "db").set(pool.in_use)

    async def stock(self, request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        async with self.locks.section(sku, self.knobs):
            row = await self.run(
                "stock",
                lambda db: db.execute(
                    "SELECT sku, name, stock, price_cents FROM products WHERE sku = ?", (sku,)
                ).fetchone(),
            )
        if row is None:
            return json_response({"message": f"no product {sku}"}, status=404)
        price = await self.price_table.price(self.knobs, sku, row[3])
        return json_response({"sku": row[0], "name": row[1], "stock": row[2], "price_cents": price})

    async def reserve(self, request: web.Request) -> web.Response:
        body = await request.json()
        sku, quantity = str(body["sku"]), int(body["quantity"])
        request_id = str(body["request_id"]) if body.get("request_id") else None
        try:
            async with self.locks.section(sku, self.knobs):
                reserved = await self.reservations.reserve(sku, quantity, request_id)
        except VersionConflict:
            return json_response({"message": f"{sku} kept changing; try again"}, status=409)
        except sqlite3.OperationalError as exc:
            self.logs.log("error", "write failed", error=str(exc), trace_id=request["trace"][0])
            # a lock given up on is a busy database (try again), not a full one
            status = 503 if "locked" in str(exc) or "busy" in str(exc) else 507
            return json_response({"message": f"database error: {exc}"}, status=status)
        if reserved is None:
            return json_response({"message": f"not enough stock of {sku}"}, status=409)
        malformed = float(self.knobs["malformed_ratio"])
        if malformed and random.random() < malformed:  # noqa: S311
            # A new version's answer: the reservation is made, the field has another name.
            self.metrics.injected.labels(self.name, "malformed").inc()
            return json_response(
                {"sku": sku, "remaining": {"units": reserved.stock}, "replayed": reserved.replayed}
            )
        return json_response({"sku": sku, "stock": reserved.stock, "replayed": reserved.replayed})

    async def ship(self, request: web.Request) -> web.Response:
        body = await request.json()
        full = disk_used_bytes() >= disk_quota_bytes()

        def work(db: sqlite3.Connection) -> None:
            # A full disk stops the database growing: SQLite answers SQLITE_FULL itself.
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages if full else 1_073_741_823}")
            db.execute(
                # Each shipment stores its label (~3 KiB): the table grows a page at a time.
                "INSERT INTO shipments (sku, quantity, shipped_at, label) "
                "VALUES (?, ?, ?, zeroblob(3000))",
                (str(body["sku"]), int(body["quantity"]), self.now()),
            )

        if self.knobs["stock_ledger"]:
            plain, ledger = work, self.ledger_path
            work = lambda db: txn.ship_with_ledger(  # noqa: E731
                txn.ledger_ready(db, ledger),
                str(body["sku"]),
                int(body["quantity"]),
                lambda: plain(db),
                self.knobs,
                self.transactions,
            )
        try:
            await self.run("ship", work)
        except sqlite3.OperationalError as exc:
            self.logs.log("error", "write failed", error=str(exc), trace_id=request["trace"][0])
            return json_response({"message": f"database error: {exc}"}, status=507)
        return json_response({"shipped": True}, status=201)

    async def search(self, request: web.Request) -> web.Response:
        words = request.query.get("q", "").split()
        limit = int(self.knobs["search_limit"])
        pattern = f"%{words[0]}%" if words else "%"
        rows = await self.run(
            "search",
            lambda db: db.execute(
                "SELECT sku, name FROM products WHERE name LIKE ? LIMIT ?", (pattern, limit)
            ).fetchall(),
        )
        names = [name for _, name in rows]
        scores, comparisons = rank(names, str(self.knobs["search_algorithm"]))
        self.search_comparisons.labels(self.name).inc(comparisons)
        ranked = [
            sku for _, sku in sorted(zip(scores, [s for s, _ in rows], strict=True), reverse=True)
        ]
        shown = int(self.knobs["listing_items"])
        if shown:
            details = await txn.listing_details(
                self.run, ranked[:shown], bool(self.knobs["listing_batched"])
            )
            return json_response({"results": details, "ranked": len(names)})
        history, results = int(self.knobs["payload_history"]), ranked[:20]
        if history:
            named = dict(rows)
            fields = request.query.get("fields")
            results = [product_record(sku, named[sku], history, fields) for sku in results]
        body = json.dumps({"results": results, "ranked": len(names)}).encode()
        self.response_bytes.labels(self.name, "/search").inc(len(body))
        return web.Response(body=body, content_type="application/json")
