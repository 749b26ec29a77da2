"""The shop's products table: built once per machine, copied into every sandbox."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

PRODUCTS = 60_000
SCHEMA_VERSION = 2  # bump when the tables change: the cached template is rebuilt
INDEX_SQL = "CREATE INDEX IF NOT EXISTS idx_products_sku ON products (sku)"


def database_create(path: Path, products: int = PRODUCTS) -> None:
    """A shop's worth of products: built once, copied into each sandbox."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.executescript(
        """
        PRAGMA journal_mode = WAL;
        CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL,
                               stock INTEGER NOT NULL, price_cents INTEGER NOT NULL);
        CREATE TABLE shipments (id INTEGER PRIMARY KEY, sku TEXT NOT NULL,
                                quantity INTEGER NOT NULL, shipped_at REAL NOT NULL,
                                label BLOB NOT NULL);
        """
    )
    adjectives = ("red", "blue", "fast", "quiet", "small", "large", "smart", "classic")
    nouns = ("kettle", "lamp", "chair", "router", "cable", "mug", "desk", "switch")
    db.executemany(
        "INSERT INTO products (id, sku, name, stock, price_cents) VALUES (?, ?, ?, ?, ?)",
        (
            (i, str(i), f"{adjectives[i % 8]} {nouns[(i // 8) % 8]} {i}", 1_000_000, 100 + i % 9000)
            for i in range(1, products + 1)
        ),
    )
    db.execute(INDEX_SQL)
    db.commit()
    db.close()
    os.replace(tmp, path)
