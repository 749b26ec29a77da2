from sandbox.catalog._build import (
    CLIENT_METRICS,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import MetricSpec, Parameter, Scenario

HOP = MetricSpec(
    "sdlab_hop_toxic", "gauge", "A toxic's setting on a hop.", ("service", "hop", "toxic")
)

SCENARIOS = [
    Scenario(
        slug="network-partition",
        category="network",
        title="A network partition",
        teaches="A partition looks like silence, not refusal: calls hang until their timeout.",
        parameters=(
            Parameter(
                "between",
                "choice",
                "orders->inventory",
                "which hop is cut",
                choices=("orders->inventory", "gateway->orders", "orders->queue"),
            ),
        ),
        apply=lambda p: {f"hop:{p['between']}": {"partition": True}},
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS, HOP),
        signature=signature(
            "orders hang until their timeouts and answer errors",
            20,
            above("orders.p50_ms", 900),
            above("gateway.errors_rps", 0.3),
        ),
        mitigations=(
            answered_by(
                "circuit-breaker",
                "breakers open: orders fail in milliseconds, not seconds",
                40,
                above("gateway.client_rejected_rps", 1.0),
                below("users.p95_ms", ratio=0.5),
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
]
