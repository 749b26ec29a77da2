from sandbox.catalog._build import POOL, REQUEST_METRICS, above, answered_by, below, signature
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

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
        explanation=Explanation(
            what_happens="The index on `products.sku` is dropped. Every lookup of one product now reads the whole products table (sixty thousand rows) to find one row, and inventory's queries take many times longer.",
            why="An index is a sorted copy of a column that lets the database jump to a row in a few page reads. Without it the only plan is a full table scan, whose cost grows with the table, not with the answer. The same query that was fast on a small test database is slow in production because production has the rows.",
            what_to_look_at="`inventory.query_ms` (average time per query) and `inventory.index_present`. The query time rises by an order of magnitude while nothing else changed; inventory's p95 follows, and users feel it on every cache miss.",
            how_systems_answer="Index the columns that queries filter and join on, and check plans before they ship (`EXPLAIN QUERY PLAN` in SQLite, `EXPLAIN ANALYZE` in PostgreSQL). Slow-query logs and per-statement metrics (pg_stat_statements) find the culprits in production; migrations that drop or rebuild indexes are reviewed like code.",
            further_reading=(
                "[SQLite: the query planner](https://www.sqlite.org/queryplanner.html)",
                "[Use The Index, Luke](https://use-the-index-luke.com/)",
                "[SQLite: EXPLAIN QUERY PLAN](https://www.sqlite.org/eqp.html)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="connection-leak",
        category="database",
        title="A connection leak",
        teaches="A code path that never gives its connection back drains the pool one connection at a time, until every query waits and fails.",
        parameters=(
            Parameter(
                "leak_ratio",
                "float",
                0.1,
                "share of transactions that keep their connection",
                0.01,
                1.0,
            ),
        ),
        apply=lambda p: {"inventory": {"db_leak_ratio": p["leak_ratio"]}},
        metrics=(
            *REQUEST_METRICS,
            *POOL,
            MetricSpec("sdlab_pool_size", "gauge", "Resources a pool holds.", ("service", "pool")),
            MetricSpec(
                "sdlab_pool_leaked_total",
                "counter",
                "Connections never given back to a pool.",
                ("service", "pool"),
            ),
        ),
        signature=signature(
            "connections in use climb to the pool's size and stay there; queries time out waiting",
            30,
            above("inventory.pool_in_use", ratio=0.99, of="inventory.pool_size"),
            above("inventory.pool_timeouts_rps", 0.5),
        ),
        mitigations=(
            answered_by(
                "reclaim-abandoned",
                "connections held too long are taken back: the pool has room and waits end",
                30,
                below("inventory.pool_timeouts_rps", 0.2),
            ),
        ),
        explanation=Explanation(
            what_happens="Some of inventory's transactions finish without returning their database connection to the pool. Each one is lost for good; connections in use climb step by step until all of them are gone. From then on every query waits for a connection that never comes and fails at the pool's timeout.",
            why="A pool lends connections on trust: it cannot know a borrower forgot it (an exception path that skips close, a connection kept in a long-lived object). Unlike an overloaded pool, a leaking pool fails at any load, only sooner at high load, and restarting the process appears to fix it until the leak drains it again.",
            what_to_look_at="`inventory.pool_in_use` rises in steps and never comes down, even when traffic is low; it reaches `inventory.pool_size`, then `inventory.pool_timeouts_rps` and users' errors rise. The database itself is idle. `sdlab_pool_leaked_total` counts the leaks here; in real systems the telltale is in-use connections that do not follow traffic.",
            how_systems_answer="Scope connections so they cannot leak (context managers, try/finally, frameworks that own the connection per request). Pools detect leaks: HikariCP's leakDetectionThreshold logs the stack of a connection held too long, Tomcat's removeAbandoned takes it back; databases close idle-in-transaction sessions. Alert on in-use connections that do not fall with traffic.",
            further_reading=(
                "[HikariCP: configuration (leakDetectionThreshold)](https://github.com/brettwooldridge/HikariCP#frequently-used)",
                "[Apache Tomcat JDBC pool: removeAbandoned](https://tomcat.apache.org/tomcat-9.0-doc/jdbc-pool.html)",
                "[PostgreSQL: idle_in_transaction_session_timeout](https://www.postgresql.org/docs/current/runtime-config-client.html)",
            ),
        ),
        load_rps=20,
    ),
    # dbperf: n-plus-one-query
    Scenario(
        slug="n-plus-one-query",
        category="database",
        title="N+1 queries",
        teaches="A listing that loads each item with its own query makes one query per item: "
        "every query is fast, but their number grows with the page and the database is busy "
        "with round trips.",
        parameters=(
            Parameter("items", "int", 50, "search results shown with their details", 5, 200),
        ),
        apply=lambda p: {"inventory": {"listing_items": p["items"]}},
        metrics=(
            *REQUEST_METRICS,
            MetricSpec(
                "sdlab_db_queries_total",
                "counter",
                "Database queries, by query (listing: the details of listed products).",
                ("service", "query"),
            ),
            MetricSpec(
                "sdlab_db_query_seconds_total",
                "counter",
                "Time in queries, by query.",
                ("service", "query"),
            ),
        ),
        signature=signature(
            "each search now makes dozens of queries and the database's query rate climbs, "
            "while each query stays fast",
            20,
            above("inventory.queries_per_search", 20),
            above("inventory.db_queries_rps", ratio=3.0),
            below("inventory.query_ms", 5),
        ),
        mitigations=(
            answered_by(
                "eager-loading",
                "one IN (...) query loads every listed product: two queries per search",
                20,
                below("inventory.queries_per_search", 3),
                below("inventory.db_queries_rps", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Search now shows each result with its details (stock, price), and "
            "loads them the way an ORM does by default when code walks a list: one `SELECT` per "
            "product. A search showing fifty products makes fifty-one queries, one after the "
            "other, each waiting for the previous one's answer.",
            why="Each query is cheap, so no single one shows up as slow; the cost is their "
            "number. Every query pays a round trip, a connection checkout, a thread hand-off and "
            "parsing, and they run in sequence, so a request's time is the sum of them. The "
            "count grows with the page size and the data, and the database's query rate grows "
            "with it, crowding out other work.",
            what_to_look_at="`inventory.queries_per_search` jumps from one to the number of "
            "items shown plus one; `inventory.db_queries_rps` climbs several-fold at the same "
            "traffic, while `inventory.query_ms` (time per query) stays low. In a trace, one "
            "search holds a staircase of identical short database spans.",
            how_systems_answer="Load related rows in one query: eager loading "
            "(`select_related`/`prefetch_related` in Django, `joinedload`/`selectinload` in "
            "SQLAlchemy), a join, or `WHERE id IN (...)`; DataLoader-style batching where "
            "resolvers fetch one item each. Count queries per request in tests "
            "(`assertNumQueries`) and watch queries per request in production.",
            further_reading=(
                "[Django: select_related and prefetch_related](https://docs.djangoproject.com/en/stable/ref/models/querysets/#prefetch-related)",
                "[SQLAlchemy: relationship loading techniques](https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html)",
                "[GraphQL DataLoader: batching](https://github.com/graphql/dataloader)",
            ),
        ),
        load_rps=20,
        load_mix={"search_ratio": 0.25},
    ),
]
