from sandbox.catalog._build import (
    CLIENT_METRICS,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="error-burst",
        category="http",
        title="Bursts of errors",
        teaches="A dependency that fails in bursts: retries inside a burst only add load; a breaker stops it.",
        parameters=(
            Parameter("burst_s", "float", 2.0, "length of each burst", 0.5, 30, unit="s"),
            Parameter("quiet_s", "float", 4.0, "time between bursts", 0.5, 60, unit="s"),
        ),
        apply=lambda p: {
            "inventory": {"error_burst_on_s": p["burst_s"], "error_burst_off_s": p["quiet_s"]}
        },
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS),
        signature=signature(
            "inventory answers 5xx in bursts and users see errors",
            20,
            above("inventory.error_ratio", 0.15),
            above("users.error_ratio", 0.01),
        ),
        mitigations=(
            answered_by(
                "circuit-breaker",
                "the gateway's breaker opens during bursts and rejects calls at once",
                30,
                above("gateway.client_rejected_rps", 0.5),
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="intermittent-5xx",
        category="http",
        title="Intermittent 5xx",
        teaches="Retries hide transient errors from users, at the price of extra load on the dependency.",
        parameters=(
            Parameter(
                "error_ratio", "float", 0.3, "share of inventory requests failing", 0.01, 0.9
            ),
        ),
        apply=lambda p: {"inventory": {"error_ratio": p["error_ratio"]}},
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS),
        signature=signature(
            "inventory fails often, the gateway retries, users barely notice",
            15,
            above("inventory.error_ratio", 0.2),
            above("gateway.client_retries_rps", 1.0),
            above("users.success_ratio", 0.95),
        ),
        mitigations=(
            answered_by(
                "retry-budget",
                "retries are capped to a share of calls",
                30,
                below("gateway.client_retries_rps", ratio=0.6),
            ),
        ),
        load_rps=20,
    ),
]
