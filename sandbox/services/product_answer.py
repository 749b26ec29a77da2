"""What inventory's search answers: its ranking of the products found (linear, or
quadratic for algorithmic-degradation) and, with `payload_history`, each product's whole
price history too, cut to the fields the caller asked for (a sparse fieldset) if it did."""

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


def rank(names: list[str], algorithm: str) -> tuple[list[int], int]:
    """A score per name (words it shares with the others) and the comparisons it took."""
    if algorithm == "quadratic":
        # Compares every result with every other: O(n^2) in the result size.
        comparisons = 0
        scores = []
        for a in names:
            score = 0
            for b in names:
                comparisons += 1
                score += len(set(a.split()) & set(b.split()))
            scores.append(score)
        return scores, comparisons
    counts: dict[str, int] = {}
    for name in names:
        for word in name.split():
            counts[word] = counts.get(word, 0) + 1
    return [sum(counts[w] for w in name.split()) for name in names], len(names)
