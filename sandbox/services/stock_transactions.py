"""Inventory's multi-statement transactions on real SQLite connections: the stock ledger
(a second database file, so two locks that can be taken in opposite order), the hot
counter row every order updates, and listing details loaded per item or in one batch."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sandbox.telemetry import ServiceMetrics

LEDGER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger.movements (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, "
    "change INTEGER NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL)"
)
COUNTER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS shop_counters (id INTEGER PRIMARY KEY, orders INTEGER NOT NULL)"
)
DETAILS_SQL = "SELECT sku, name, stock, price_cents FROM products WHERE sku "
Run = Callable[[str, Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


class TransactionMetrics:
    """Lock waits, deadlocks and retries of the transactions below, by transaction."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        labels = ["service", "transaction"]
        self.lock_wait = metrics.counter(
            "sdlab_db_lock_wait_seconds", "Time writes waited for a database lock.", labels
        )
        self.lock_waits = metrics.counter(
            "sdlab_db_lock_waits", "Writes that asked for a database lock.", labels
        )
        self.deadlocks = metrics.counter(
            "sdlab_db_deadlocks",
            "Transactions rolled back after their lock wait ran out ('database is locked').",
            labels,
        )
        self.retries = metrics.counter(
            "sdlab_db_transaction_retries", "Transactions run again after a deadlock.", labels
        )
        self.service = metrics.service
        for counter in (self.lock_wait, self.lock_waits, self.deadlocks, self.retries):
            for transaction in ("reserve", "ship", "order"):
                counter.labels(self.service, transaction)  # exposed from zero, not from the first

    def timed_write(
        self, db: sqlite3.Connection, transaction: str, sql: str, args: tuple[Any, ...]
    ) -> sqlite3.Cursor:
        """A write statement; the time it takes is, under contention, the lock wait."""
        started = time.perf_counter()
        try:
            return db.execute(sql, args)
        finally:
            self.lock_wait.labels(self.service, transaction).inc(time.perf_counter() - started)
            self.lock_waits.labels(self.service, transaction).inc()


def ledger_prepare(db: sqlite3.Connection, path: Path) -> None:
    """Attaches the ledger (its own file, so its own write lock) to a pooled connection."""
    attached = {row[1] for row in db.execute("PRAGMA database_list")}
    if "ledger" not in attached:
        db.execute("ATTACH DATABASE ? AS ledger", (str(path),))
        db.execute("PRAGMA ledger.journal_mode = WAL")
        db.execute(LEDGER_SCHEMA)


def ledger_ready(db: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    ledger_prepare(db, path)
    return db


def counter_prepare(db: sqlite3.Connection) -> None:
    db.execute(COUNTER_SCHEMA)
    db.execute("INSERT OR IGNORE INTO shop_counters (id, orders) VALUES (1, 0)")


def in_transaction(
    db: sqlite3.Connection,
    body: Callable[[], Any],
    *,
    lock_timeout_ms: float,
    retries: int,
    name: str,
    metrics: TransactionMetrics,
    upfront: bool = False,
) -> Any:
    """BEGIN, body, COMMIT; a lock wait that runs out rolls back, and is retried `retries`
    times (with a short growing pause) before the error goes up. `upfront` takes every
    database's write lock at BEGIN (IMMEDIATE), always in the same order, before any work."""
    db.execute(f"PRAGMA busy_timeout = {int(lock_timeout_ms)}")
    try:
        for attempt in range(retries + 1):
            try:
                if upfront:
                    metrics.timed_write(db, name, "BEGIN IMMEDIATE", ())
                else:
                    db.execute("BEGIN")
                result = body()
                db.execute("COMMIT")
                return result
            except sqlite3.OperationalError as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                metrics.deadlocks.labels(metrics.service, name).inc()
                if attempt == retries:
                    raise
                metrics.retries.labels(metrics.service, name).inc()
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")
    finally:
        db.execute("PRAGMA busy_timeout = 5000")


def ledger_transaction(
    db: sqlite3.Connection,
    body: Callable[[], Any],
    name: str,
    knobs: dict[str, Any],
    m: TransactionMetrics,
) -> Any:
    """A transaction over products and the ledger, with the deadlock scenario's settings."""
    return in_transaction(
        db,
        body,
        lock_timeout_ms=float(knobs["ledger_lock_timeout_ms"]),
        retries=int(knobs["db_deadlock_retries"]),
        name=name,
        metrics=m,
        upfront=bool(knobs["ledger_ordered"]),
    )


def reserve_with_ledger(
    db: sqlite3.Connection,
    sku: str,
    quantity: int,
    knobs: dict[str, Any],
    m: TransactionMetrics,
    record: Callable[[sqlite3.Connection, int], None] | None = None,
) -> Any:
    """Products first, then the ledger: the stock row is locked while the ledger waits."""
    gap_s = float(knobs["ledger_gap_ms"]) / 1000

    def body() -> Any:
        row = m.timed_write(
            db,
            "reserve",
            "UPDATE products SET stock = stock - ? WHERE sku = ? AND stock >= ? RETURNING stock",
            (quantity, sku, quantity),
        ).fetchone()
        time.sleep(gap_s)  # the application's work between its two statements
        m.timed_write(
            db,
            "reserve",
            "INSERT INTO ledger.movements (sku, change, reason, at) VALUES (?, ?, 'reserve', ?)",
            (sku, -quantity, time.time()),
        )
        if row is not None and record is not None:
            record(db, int(row[0]))  # the order's own row, in the same transaction
        return row

    return ledger_transaction(db, body, "reserve", knobs, m)


def ship_with_ledger(
    db: sqlite3.Connection,
    sku: str,
    quantity: int,
    write_shipment: Callable[[], None],
    knobs: dict[str, Any],
    m: TransactionMetrics,
) -> None:
    """The ledger first, then products: the opposite order to reserve, unless ordered."""
    gap_s = float(knobs["ledger_gap_ms"]) / 1000

    def ledger() -> None:
        m.timed_write(
            db,
            "ship",
            "INSERT INTO ledger.movements (sku, change, reason, at) VALUES (?, ?, 'ship', ?)",
            (sku, 0, time.time()),
        )

    def products() -> None:
        started = time.perf_counter()
        write_shipment()
        m.lock_wait.labels(m.service, "ship").inc(time.perf_counter() - started)
        m.lock_waits.labels(m.service, "ship").inc()

    first, second = (products, ledger) if knobs["ledger_ordered"] else (ledger, products)

    def body() -> None:
        first()
        time.sleep(gap_s)
        second()

    ledger_transaction(db, body, "ship", knobs, m)


def reserve_with_hot_row(
    db: sqlite3.Connection,
    sku: str,
    quantity: int,
    knobs: dict[str, Any],
    m: TransactionMetrics,
    record: Callable[[sqlite3.Connection, int], None] | None = None,
) -> Any:
    """Every order also counts itself on one shared row, and works while holding it; with
    short transactions the work is done first and the transaction only writes."""
    work_s = float(knobs["hot_row_txn_ms"]) / 1000
    short = bool(knobs["short_transactions"])
    if short:
        time.sleep(work_s)  # the same work (pricing, loyalty points), before the lock

    def body() -> Any:
        row = m.timed_write(
            db,
            "order",
            "UPDATE products SET stock = stock - ? WHERE sku = ? AND stock >= ? RETURNING stock",
            (quantity, sku, quantity),
        ).fetchone()
        db.execute("UPDATE shop_counters SET orders = orders + 1 WHERE id = 1")  # the hot row
        if row is not None and record is not None:
            record(db, int(row[0]))  # the order's own row, in the same transaction
        if not short:
            time.sleep(work_s)  # inside the transaction: every other writer waits for it
        return row

    return in_transaction(
        db,
        body,
        lock_timeout_ms=5000,
        retries=int(knobs["db_deadlock_retries"]),
        name="order",
        metrics=m,
    )


async def listing_details(run: Run, skus: list[str], batched: bool) -> list[Any]:
    """Each listed product's details: one query per item (N+1), or one IN (...) query."""
    if batched:
        marks = ",".join("?" * len(skus))
        return list(
            await run(
                "listing", lambda db: db.execute(DETAILS_SQL + f"IN ({marks})", skus).fetchall()
            )
        )

    def one(sku: str) -> Callable[[sqlite3.Connection], Any]:
        return lambda db: db.execute(DETAILS_SQL + "= ?", (sku,)).fetchone()

    return [await run("listing", one(sku)) for sku in skus]
