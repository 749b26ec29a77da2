from sandbox.catalog._build import REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

SCENARIOS = [
    Scenario(
        slug="algorithmic-degradation",
        category="performance",
        title="Quadratic search",
        teaches="An O(n^2) step is invisible on small inputs and dominant on larger ones.",
        # 600 rows is about half a second of CPU per search: past it, searches still queued
        # when the scenario ends would keep inventory busy for minutes.
        parameters=(Parameter("results", "int", 400, "rows each search ranks", 10, 600),),
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
        explanation=Explanation(
            what_happens="Search ranks its results by comparing every result with every other one. With a handful of results that is instant; with hundreds it is hundreds of thousands of comparisons per search, and inventory's tail latency follows.",
            why="An O(n^2) step costs n^2: ten times the rows is a hundred times the work. It passes every test on small data and dominates in production, where the inputs are larger. Because only searches pay it, the average hides it and the tail shows it.",
            what_to_look_at="`inventory.search_comparisons_per_query` grows with the square of the results; `inventory.p99_ms` rises because searches are a small share of requests. A profile or a trace of one search points at the ranking loop.",
            how_systems_answer="Know the complexity of the hot path and test it at production sizes; rank with counts or an index (O(n) or O(n log n)); bound input sizes (pagination, limits); benchmark with realistic data before shipping.",
            further_reading=(
                "[Accidentally quadratic](https://accidentallyquadratic.tumblr.com/)",
                "[Azure architecture antipatterns: extraneous fetching](https://learn.microsoft.com/en-us/azure/architecture/antipatterns/extraneous-fetching/)",
                "[Brendan Gregg: CPU flame graphs](https://www.brendangregg.com/FlameGraphs/cpuflamegraphs.html)",
            ),
        ),
        load_rps=20,
        load_mix={"search_ratio": 0.25},
    ),
    Scenario(
        slug="unbounded-result-set",
        category="performance",
        title="An unbounded result set",
        teaches="A query without a limit returns everything that matches: its cost grows with the data, not with what the user looks at.",
        parameters=(
            Parameter("rows", "int", 2000, "rows each search returns and ranks", 100, 5000),
        ),
        apply=lambda p: {"inventory": {"search_limit": p["rows"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_search_comparisons_total",
                "counter",
                "Rows ranked by searches (comparisons).",
                ("service",),
            ),
            MetricSpec(
                "sdlab_db_queries_total",
                "counter",
                "Database queries, by query.",
                ("service", "query"),
            ),
        ),
        signature=signature(
            "each search reads and ranks thousands of rows to show twenty",
            20,
            above("inventory.search_comparisons_per_query", 1000),
        ),
        mitigations=(
            answered_by(
                "pagination",
                "pages of fifty rows: each search reads a bounded page",
                20,
                below("inventory.search_comparisons_per_query", 100),
            ),
        ),
        explanation=Explanation(
            what_happens="Search returns every matching product instead of a page of them. Each search now reads, ranks and serialises thousands of rows, although the user sees the top twenty; searches get slower and heavier as the catalogue grows.",
            why="Without a limit, a query's cost is proportional to how many rows match, and that number only grows with the data. It is fine in development with a hundred products and slow in production with a hundred thousand; every layer pays for it (database reads, memory, ranking, bytes on the wire).",
            what_to_look_at="`inventory.search_comparisons_per_query`: rows ranked per search, here equal to the rows returned. It jumps from the page size to thousands; search latency and inventory's p99 follow. Responses that grow over time with no change in traffic point at unbounded queries.",
            how_systems_answer="Paginate every list endpoint (keyset or cursor pagination for deep pages), enforce a maximum page size on the server, select only the columns needed, and push ranking and filtering into the database where an index can do it.",
            further_reading=(
                "[Use The Index, Luke: paging through results](https://use-the-index-luke.com/no-offset)",
                "[Azure architecture antipatterns: extraneous fetching](https://learn.microsoft.com/en-us/azure/architecture/antipatterns/extraneous-fetching/)",
                "[JSON:API: pagination](https://jsonapi.org/format/#fetching-pagination)",
            ),
        ),
        load_rps=20,
        load_mix={"search_ratio": 0.25},
    ),
    # dbperf: serialization-overhead
    Scenario(
        slug="serialization-overhead",
        category="performance",
        title="Serialising far more than needed",
        teaches="An answer that carries every field of every object costs CPU to encode and "
        "decode at every hop and time on the wire, although the caller shows a few fields.",
        parameters=(
            Parameter(
                "history", "int", 200, "price-history entries each listed product carries", 10, 500
            ),
        ),
        apply=lambda p: {"inventory": {"payload_history": p["history"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_response_bytes_total",
                "counter",
                "Bytes of the answers sent, by route.",
                ("service", "route"),
            ),
            MetricSpec(
                "sdlab_process_cpu_seconds_total",
                "counter",
                "CPU time of the service.",
                ("service",),
            ),
        ),
        signature=signature(
            "each search answer grows to hundreds of kilobytes; CPU and search latency follow",
            20,
            above("inventory.search_response_kb", 100),
            above("gateway.cpu_ms_per_request", ratio=2.0),
            above("gateway.p95_ms", ratio=2.0),
        ),
        mitigations=(
            answered_by(
                "field-selection",
                "the gateway asks only for the fields it shows: answers shrink to a kilobyte",
                20,
                below("inventory.search_response_kb", 5),
                below("gateway.cpu_ms_per_request", ratio=0.7),
            ),
        ),
        explanation=Explanation(
            what_happens="Search answers now carry each listed product's whole price history "
            "(hundreds of entries each), although the results page shows only names. Every "
            "answer is hundreds of kilobytes of JSON: inventory encodes it, the proxies copy "
            "it, the gateway decodes and encodes it again, the user decodes it.",
            why="Serialisation is CPU work proportional to the bytes and objects encoded, and "
            "it happens at every hop that parses the payload; transfer time grows with the "
            'bytes too. A response shape that grew field by field ("the client might need '
            'it") makes every request pay for the largest use case. It shows as CPU and '
            "latency that grow with payload size while the number of requests stays the same.",
            what_to_look_at="`inventory.search_response_kb` (average size of a search answer) "
            "jumps from under a kilobyte to hundreds; `gateway.cpu_ms_per_request` (the CPU "
            "each request costs) and `inventory.cpu_ratio` rise at the same traffic, and "
            "`gateway.p95_ms` follows. A "
            "profile shows time in `json.dumps` and `json.loads`, not in the database.",
            how_systems_answer="Let callers choose fields (sparse fieldsets, GraphQL "
            "selections, `fields=` masks as in Google APIs), paginate nested collections, "
            "send summaries in lists and details on demand, use a compact binary encoding "
            "(protobuf, MessagePack) where payloads are large, and compress on slow links. "
            "Track response size per route as a metric.",
            further_reading=(
                "[JSON:API: sparse fieldsets](https://jsonapi.org/format/#fetching-sparse-fieldsets)",
                "[Google APIs: partial responses with field masks](https://cloud.google.com/apis/docs/system-parameters)",
                "[Azure architecture antipatterns: extraneous fetching](https://learn.microsoft.com/en-us/azure/architecture/antipatterns/extraneous-fetching/)",
            ),
        ),
        load_rps=20,
        load_mix={"search_ratio": 0.25},
    ),
]
