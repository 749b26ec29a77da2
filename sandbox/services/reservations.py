"""Reservations of stock in inventory's SQLite database: every order is a row keyed by the
client's request id, and the stock is taken the way the knobs say (one atomic UPDATE, a
read-modify-write, or a version check). A reconciliation reads stock against the rows to
find lost updates; a sales report reads the rows twice, in one snapshot or not."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.services import stock_transactions as txn
from sandbox.services.base import IDLE_S, disk_quota_bytes, disk_used_bytes

if TYPE_CHECKING:
    from sandbox.services.inventory import Inventory

STOCK_INITIAL = 1_000_000  # what products_db.database_create stocks every product with
VERSION_ATTEMPTS = 8  # a version conflict is retried at once, this many times in all
REPORT_WINDOW_S = 60.0  # the sales report covers the last minute of orders
SCHEMA = """
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY, request_id TEXT, sku TEXT NOT NULL, quantity INTEGER NOT NULL,
    stock_after INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_reservations_request ON reservations (request_id);
CREATE INDEX IF NOT EXISTS idx_reservations_sku ON reservations (sku);
CREATE INDEX IF NOT EXISTS idx_reservations_at ON reservations (at);
"""


class VersionConflict(Exception):
    """The row changed between the read and the write: the write matched no row."""


@dataclass(frozen=True)
class Reserved:
    stock: int
    replayed: bool = False


class Reservations:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        m, name = inventory.metrics, inventory.name
        self.outcomes = m.counter(
            "sdlab_reservations", "Reservations asked for, by outcome.", ["service", "outcome"]
        )
        self.duplicates = m.counter(
            "sdlab_duplicate_orders",
            "Reservations written for a request id that already had one.",
            ["service"],
        )
        self.lost_updates = m.counter(
            "sdlab_stock_lost_updates",
            "Units reserved that the stock never went down by (found by reconciliation).",
            ["service"],
        )
        self.conflicts = m.counter(
            "sdlab_version_conflicts",
            "Writes refused because the row's version changed since it was read.",
            ["service"],
        )
        self.reports = m.counter(
            "sdlab_reports",
            "Sales reports read, by whether their total matched their lines.",
            ["service", "outcome"],
        )
        for outcome in ("ok", "replayed", "no-stock", "conflict"):
            self.outcomes.labels(name, outcome)
        for counter in (self.duplicates, self.lost_updates, self.conflicts):
            counter.labels(name)
        for outcome in ("consistent", "inconsistent"):
            self.reports.labels(name, outcome)
        self.writers: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, holders and waiters
        self.audited_id = 0
        self.drift: dict[str, int] = {}
        self.baselined = False  # a new process's first pass finds old drift: not new losses

    @property
    def knobs(self) -> dict[str, Any]:
        return self.inventory.knobs

    async def start(self) -> None:
        # Its own connections: reconciliation and the report do not take the pool's.
        loop = asyncio.get_running_loop()
        self.audit_db = self.inventory.connect()
        self.report_db = self.inventory.connect()
        await loop.run_in_executor(None, schema_apply, self.audit_db)
        self.inventory.background.append(asyncio.create_task(self.reconcile()))
        self.inventory.background.append(asyncio.create_task(self.report()))

    # -- taking stock

    async def reserve(self, sku: str, quantity: int, request_id: str | None) -> Reserved | None:
        """None when there is not enough stock; raises VersionConflict when retries ran out."""
        if self.knobs["hot_row_txn_ms"] or self.knobs["stock_ledger"]:
            return await self.locking_transaction(sku, quantity, request_id)
        if not self.knobs["stock_single_writer"]:
            return await self.attempts(sku, quantity, request_id)
        # One writer per product at a time: the others wait their turn instead of colliding.
        lock, users = self.writers.get(sku, (asyncio.Lock(), 0))
        self.writers[sku] = (lock, users + 1)
        try:
            async with lock:
                return await self.attempts(sku, quantity, request_id)
        finally:
            lock, users = self.writers[sku]
            if users > 1:
                self.writers[sku] = (lock, users - 1)
            else:
                del self.writers[sku]  # nobody holds or awaits it: the table stays small

    async def locking_transaction(
        self, sku: str, quantity: int, request_id: str | None
    ) -> Reserved | None:
        """The database scenarios' own transactions (a hot counter row, a second ledger
        database): how they take their locks is their lesson, so they bypass the modes;
        the reservation row is still written in the same transaction."""
        inventory, knobs = self.inventory, self.knobs
        if knobs["idempotency_keys"] and request_id:
            # Read before the transaction, not in it: a retry comes long after its first try.
            first = await inventory.run("reserve", lambda db: reservation_replay(db, request_id))
            if first is not None:
                self.outcomes.labels(inventory.name, "replayed").inc()
                return first
        full = disk_used_bytes() >= disk_quota_bytes()

        def record(db: sqlite3.Connection, stock: int) -> None:
            reservation_insert(db, sku, quantity, request_id, stock)

        def work(db: sqlite3.Connection) -> Any:
            page_cap(db, full)
            if knobs["hot_row_txn_ms"]:
                return txn.reserve_with_hot_row(
                    db, sku, quantity, knobs, inventory.transactions, record
                )
            ledger = txn.ledger_ready(db, inventory.ledger_path)
            return txn.reserve_with_ledger(
                ledger, sku, quantity, knobs, inventory.transactions, record
            )

        row = await inventory.run("reserve", work)
        self.outcomes.labels(inventory.name, "no-stock" if row is None else "ok").inc()
        return None if row is None else Reserved(int(row[0]))

    async def attempts(self, sku: str, quantity: int, request_id: str | None) -> Reserved | None:
        name = self.inventory.name
        for _ in range(VERSION_ATTEMPTS):
            try:
                reserved = await self.attempt(sku, quantity, request_id)
            except VersionConflict:
                self.conflicts.labels(name).inc()
                continue
            outcome = "no-stock" if reserved is None else "ok"
            if reserved is not None and reserved.replayed:
                outcome = "replayed"
            self.outcomes.labels(name, outcome).inc()
            return reserved
        self.outcomes.labels(name, "conflict").inc()
        raise VersionConflict(sku)

    async def attempt(self, sku: str, quantity: int, request_id: str | None) -> Reserved | None:
        mode = self.knobs["stock_write"]
        read: tuple[int, int] | None = None
        if mode in ("read-modify-write", "version-check"):
            read = await self.inventory.run(
                "stock-read",
                lambda db: db.execute(
                    "SELECT stock, version FROM products WHERE sku = ?", (sku,)
                ).fetchone(),
            )
            if read is None or read[0] < quantity:
                return None
        check_ms = float(self.knobs["stock_check_ms"])
        if check_ms > 0:
            await asyncio.sleep(check_ms / 1000)  # the price check, between read and write

        def take(db: sqlite3.Connection) -> int | None:
            if read is None:
                row = db.execute(
                    "UPDATE products SET stock = stock - ? "
                    "WHERE sku = ? AND stock >= ? RETURNING stock",
                    (quantity, sku, quantity),
                ).fetchone()
                return None if row is None else int(row[0])
            stock, version = read
            if mode == "read-modify-write":
                # Writes back what it computed from its read: a write in between is lost.
                db.execute("UPDATE products SET stock = ? WHERE sku = ?", (stock - quantity, sku))
                return stock - quantity
            changed = db.execute(
                "UPDATE products SET stock = ?, version = version + 1 "
                "WHERE sku = ? AND version = ?",
                (stock - quantity, sku, version),
            ).rowcount
            if not changed:
                raise VersionConflict(sku)
            return stock - quantity

        idempotent = bool(self.knobs["idempotency_keys"])
        full = disk_used_bytes() >= disk_quota_bytes()
        reserved, copies = await self.inventory.run(
            "reserve",
            lambda db: reservation_commit(db, sku, quantity, request_id, idempotent, take, full),
        )
        if copies > 1:
            self.duplicates.labels(self.inventory.name).inc()
        return reserved

    # -- reconciliation: stock against the reservations rows

    async def reconcile(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.inventory.figures_due()
            try:
                found = await loop.run_in_executor(None, self.reconcile_read)
            except sqlite3.Error as exc:
                self.inventory.logs.log("warning", "reconciliation failed", error=str(exc))
                continue
            for sku, drift in found.items():
                grown = drift - self.drift.get(sku, 0)
                if grown > 0 and self.baselined:
                    self.lost_updates.labels(self.inventory.name).inc(grown)
                    self.inventory.logs.log("warning", "stock drift", sku=sku, units=drift)
                self.drift[sku] = drift
            self.baselined = True

    def reconcile_read(self) -> dict[str, int]:
        """Per product ordered since the last pass: units reserved minus units the stock went
        down by, both read in one snapshot so a commit in between cannot skew them."""
        db = self.audit_db
        db.execute("BEGIN")
        try:
            last = db.execute("SELECT max(id) FROM reservations").fetchone()[0] or 0
            skus = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT sku FROM reservations WHERE id > ? AND id <= ?",
                    (self.audited_id, last),
                )
            ]
            found = {}
            for sku in skus:
                reserved = db.execute(
                    "SELECT total(quantity) FROM reservations WHERE sku = ?", (sku,)
                ).fetchone()[0]
                stock = db.execute("SELECT stock FROM products WHERE sku = ?", (sku,)).fetchone()
                if stock is not None:
                    found[sku] = int(reserved) - (STOCK_INITIAL - int(stock[0]))
        finally:
            db.execute("COMMIT")
        self.audited_id = last
        return found

    # -- the sales report: a total, then the lines it totals

    async def report(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            every = float(self.knobs["report_every_ms"]) / 1000
            if every <= 0:
                await self.inventory.knobs_wait(IDLE_S)
                continue
            render_s = float(self.knobs["report_render_ms"]) / 1000
            snapshot = bool(self.knobs["report_snapshot"])
            try:
                consistent = await loop.run_in_executor(None, self.report_read, render_s, snapshot)
            except sqlite3.Error as exc:
                self.inventory.logs.log("warning", "report failed", error=str(exc))
            else:
                outcome = "consistent" if consistent else "inconsistent"
                self.reports.labels(self.inventory.name, outcome).inc()
            await asyncio.sleep(every)

    def report_read(self, render_s: float, snapshot: bool) -> bool:
        db = self.report_db
        since = time.time() - REPORT_WINDOW_S
        if snapshot:
            db.execute("BEGIN")  # WAL: every read of this transaction sees one snapshot
        try:
            total = db.execute(
                "SELECT count(*) FROM reservations WHERE at >= ?", (since,)
            ).fetchone()[0]
            time.sleep(render_s)
            lines = db.execute(
                "SELECT id, sku, quantity FROM reservations WHERE at >= ?", (since,)
            ).fetchall()
        finally:
            if snapshot:
                db.execute("COMMIT")
        return bool(total == len(lines))


def schema_apply(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(products)")}
    if "version" not in columns:
        db.execute("ALTER TABLE products ADD COLUMN version INTEGER NOT NULL DEFAULT 0")


def reservation_commit(
    db: sqlite3.Connection,
    sku: str,
    quantity: int,
    request_id: str | None,
    idempotent: bool,
    take: Callable[[sqlite3.Connection], int | None],
    disk_full: bool,
) -> tuple[Reserved | None, int]:
    """One write transaction: the key lookup, the stock, the row. Returns the reservation
    (None: not enough stock) and how many rows now carry its request id."""
    page_cap(db, disk_full)
    db.execute("BEGIN IMMEDIATE")  # the write lock first: two retries cannot both miss the key
    try:
        if idempotent and request_id:
            first = reservation_replay(db, request_id)
            if first is not None:
                db.execute("COMMIT")
                return first, 1
        stock = take(db)
        if stock is None:
            db.execute("ROLLBACK")
            return None, 0
        copies = reservation_insert(db, sku, quantity, request_id, stock)
        db.execute("COMMIT")
        return Reserved(stock), copies
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def page_cap(db: sqlite3.Connection, disk_full: bool) -> None:
    """As for shipments: a full disk stops the database growing (SQLite answers SQLITE_FULL)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages if disk_full else 1_073_741_823}")


def reservation_replay(db: sqlite3.Connection, request_id: str) -> Reserved | None:
    """The reservation already made for this request id, if any."""
    row = db.execute(
        "SELECT stock_after FROM reservations WHERE request_id = ? ORDER BY id LIMIT 1",
        (request_id,),
    ).fetchone()
    return None if row is None else Reserved(int(row[0]), replayed=True)


def reservation_insert(
    db: sqlite3.Connection, sku: str, quantity: int, request_id: str | None, stock: int
) -> int:
    """Writes the reservation's row; how many rows now carry its request id."""
    db.execute(
        "INSERT INTO reservations (request_id, sku, quantity, stock_after, at) "
        "VALUES (?, ?, ?, ?, ?)",
        (request_id, sku, quantity, stock, time.time()),
    )
    if not request_id:
        return 1
    return int(
        db.execute(
            "SELECT count(*) FROM reservations WHERE request_id = ?", (request_id,)
        ).fetchone()[0]
    )
