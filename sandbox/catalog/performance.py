from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import MetricSpec, Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="algorithmic-degradation",
        category="performance",
        title="Quadratic search",
        teaches="An O(n^2) step is invisible on small inputs and dominant on larger ones.",
        parameters=(Parameter("results", "int", 400, "rows each search ranks", 10, 2000),),
        apply=lambda p: {
            "inventory": {"search_algorithm": "quadratic", "search_limit": p["results"]}
        },
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_search_comparisons_total",
                "counter",
                "Comparisons ranking results.",
                ("service",),
            ),
        ),
        signature=signature(
            "each search makes n^2 comparisons and inventory's tail latency follows",
            20,
            above("inventory.search_comparisons_per_query", 10_000),
            above("inventory.p99_ms", ratio=3.0),
        ),
        mitigations=(
            answered_by(
                "bounded-algorithm",
                "linear ranking: comparisons fall to n",
                20,
                below("inventory.search_comparisons_per_query", 3000),
            ),
        ),
        load_rps=20,
        load_mix={"search_ratio": 0.25},
    ),
]
