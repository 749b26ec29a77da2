"""What inventory answers for one product: its row, and with `payload_history` its whole
price history too, cut to the fields the caller asked for (a sparse fieldset) if it did."""

from __future__ import annotations

import json
from typing import Any


def product_answer(row: tuple[Any, ...], fields: str | None, history: int) -> bytes:
    wanted = fields.split(",") if fields is not None else None
    product: dict[str, Any] = {
        "sku": row[0],
        "name": row[1],
        "stock": row[2],
        "price_cents": row[3],
    }
    if history and (wanted is None or "price_history" in wanted):
        # Everything the product has, whether or not the caller shows it.
        product["price_history"] = [
            {
                "day": day,
                "price_cents": row[3] + day * 37 % 500,
                "currency": "EUR",
                "source": "list-price",
                "changed_by": "pricing-job",
            }
            for day in range(history)
        ]
    if wanted is not None:
        product = {k: v for k, v in product.items() if k in wanted}
    return json.dumps(product).encode()
