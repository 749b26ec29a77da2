from sandbox.catalog._build import (
    CLIENT_METRICS,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

RESERVATIONS = MetricSpec(
    "sdlab_reservations_total",
    "counter",
    "Reservations asked for, by outcome (ok, replayed, no-stock, conflict).",
    ("service", "outcome"),
)

SCENARIOS = [
    Scenario(
        slug="double-write",
        category="concurrency",
        title="An order taken twice",
        teaches="A retry of a request that did succeed repeats its side effect: without an "
        "idempotency key, one click becomes two orders.",
        parameters=(
            Parameter(
                "slow_ratio",
                "float",
                0.3,
                "share of hand-offs to the queue that stall after the order is saved",
                0.1,
                0.8,
            ),
            Parameter(
                "stall_ms", "int", 600, "how long a stalled hand-off takes", 400, 3000, unit="ms"
            ),
        ),
        apply=lambda p: {
            "queue": {"slow_ratio": p["slow_ratio"], "slow_ms": p["stall_ms"]},
            "gateway": {"client_timeout_ms": 300},
        },
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            RESERVATIONS,
            MetricSpec(
                "sdlab_duplicate_orders_total",
                "counter",
                "Reservations written for a client request id that already had one.",
                ("service",),
            ),
        ),
        signature=signature(
            "the gateway's retries of orders that did go through write the same order again",
            20,
            above("gateway.client_retries_rps", 0.3),
            above("inventory.duplicate_orders_rps", 0.3),
        ),
        mitigations=(
            answered_by(
                "idempotency-keys",
                "a retry finds its request id and gets the first order back: no more duplicates",
                20,
                below("inventory.duplicate_orders_rps", 0.05),
                above("inventory.idempotent_replays_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="Some of the time, handing a new order to the fulfilment queue stalls. The order is already saved (its reservation row is committed and the stock taken), but the gateway stops waiting after 300 ms and sends the same request again. The retry is a new order: the same client request id now has two reservations, and two parcels will ship.",
            why="A timeout tells the caller nothing about what happened on the other side: the request may never have arrived, or it may have done all its work and only the answer was late. Retrying is safe only when doing the thing twice has the same effect as doing it once. Creating an order is not like that, so every retry of a request that in fact succeeded writes a duplicate.",
            what_to_look_at="`gateway.client_retries_rps`: the gateway retries orders that timed out. `inventory.duplicate_orders_rps` counts reservations written for a request id that already had one (a real count in the reservations table). Users mostly see success, which is what makes duplicates so easy to miss.",
            how_systems_answer="Idempotency keys: the client sends a unique key with each operation and reuses it on every retry; the server stores the key with the result in the same transaction as the write, and a request with a known key gets the stored result instead of a second write. Stripe's API, AWS's ClientToken and the IETF Idempotency-Key header all work this way. Unique constraints on a natural key (one order per cart) catch what keys miss.",
            further_reading=(
                "[Stripe: idempotent requests](https://docs.stripe.com/api/idempotent_requests)",
                "[Brandur Leach: Implementing Stripe-like idempotency keys in Postgres](https://brandur.org/idempotency-keys)",
                "[IETF draft: the Idempotency-Key HTTP header field](https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/)",
                "[AWS Builders' Library: making retries safe with idempotent APIs](https://aws.amazon.com/builders-library/making-retries-safe-with-idempotent-APIs/)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
]
