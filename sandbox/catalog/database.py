from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import MetricSpec, Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="slow-db-query",
        category="database",
        title="A missing index",
        teaches="Without its index a lookup scans the whole table: query time grows with the data.",
        parameters=(
            Parameter(
                "index", "choice", "dropped", "the index on products.sku", choices=("dropped",)
            ),
        ),
        apply=lambda p: {"inventory": {"db_index": False}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_db_query_seconds_total",
                "counter",
                "Time in queries, by query.",
                ("service", "query"),
            ),
            MetricSpec(
                "sdlab_db_index_present", "gauge", "1 when products.sku is indexed.", ("service",)
            ),
        ),
        signature=signature(
            "the index is gone and each query takes many times longer",
            20,
            below("inventory.index_present", 0.5),
            above("inventory.query_ms", ratio=3.0),
        ),
        mitigations=(
            answered_by(
                "index",
                "with the index back, queries are fast again",
                20,
                above("inventory.index_present", 0.5),
                below("inventory.query_ms", ratio=0.5),
            ),
        ),
        load_rps=20,
    ),
]
