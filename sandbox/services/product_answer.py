"""What inventory's search answers for each product it lists: with `payload_history`, the
product's whole price history too, cut to the fields the caller asked for (a sparse
fieldset) if it did."""

from __future__ import annotations

from typing import Any


def product_record(sku: str, name: str, history: int, fields: str | None) -> dict[str, Any]:
    wanted = fields.split(",") if fields is not None else None
    product: dict[str, Any] = {"sku": sku, "name": name}
    if wanted is None or "price_history" in wanted:
        # Everything the product has, whether or not the caller shows it.
        base = 100 + int(sku) % 9000 if sku.isdigit() else 100
        product["price_history"] = [
            {
                "day": day,
                "price_cents": base + day * 37 % 500,
                "currency": "EUR",
                "source": "list-price",
                "changed_by": "pricing-job",
            }
            for day in range(history)
        ]
    if wanted is not None:
        product = {k: v for k, v in product.items() if k in wanted}
    return product
