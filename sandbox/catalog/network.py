from sandbox.catalog._build import (
    CLIENT_METRICS,
    HOP,
    IN_FLIGHT,
    REQUEST_METRICS,
    above,
    answered_by,
    below,
    signature,
)
from sandbox.spec import Explanation, MetricSpec, Parameter, Scenario

CUT_RESPONSES = MetricSpec(
    "sdlab_hop_cut_responses",
    "gauge",
    "Responses a hop cut short (total), by how: close (byte limit) or reset.",
    ("service", "hop", "how"),
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
        explanation=Explanation(
            what_happens="The network between two services is cut: packets go in and nothing comes back. Calls across the cut do not fail; they hang until their timeout, and orders slow down to the timeout before answering with errors.",
            why="A partition looks like silence, not refusal: no reset, no error, just no answer. A caller cannot tell a partitioned peer from a slow one, so it waits for its timeout, holding a connection, a request slot and the user, on every call.",
            what_to_look_at="`orders.p50_ms` jumps to about the client timeout and `gateway.errors_rps` rises. Latency at the timeout value, not errors, is the first sign of a partition.",
            how_systems_answer="Timeouts on every remote call, sized from the latency budget; circuit breakers so a partition costs one timeout per cool-down instead of one per call; and designs that say what happens on each side of a partition (the CAP trade-off, fencing, idempotent retries after healing).",
            further_reading=(
                "[The network is reliable (ACM Queue)](https://queue.acm.org/detail.cfm?id=2655736)",
                "[Toxiproxy](https://github.com/Shopify/toxiproxy)",
                "[Martin Fowler: Circuit Breaker](https://martinfowler.com/bliki/CircuitBreaker.html)",
            ),
        ),
        load_rps=20,
        load_mix={"read_ratio": 0.5},
    ),
    Scenario(
        slug="packet-loss",
        category="network",
        title="Packet loss",
        teaches="Lost packets are retransmitted, not reported: the network adds whole retransmission timeouts to some calls, and the server never sees it.",
        parameters=(
            Parameter(
                "loss_percent",
                "float",
                15.0,
                "share of chunks lost once and retransmitted",
                1,
                50,
                unit="%",
            ),
        ),
        apply=lambda p: {"hop:gateway->inventory": {"loss_percent": p["loss_percent"]}},
        metrics=(*REQUEST_METRICS, HOP),
        signature=signature(
            "the gateway's tail latency jumps by retransmission timeouts while inventory itself stays fast",
            20,
            above("gateway.p95_ms", 150),
            below("inventory.p95_ms", 50),
        ),
        mitigations=(
            # The cache fills as keys are read again: with popularity log-uniform over a
            # thousand products, about half the reads still miss 40 s after the switch
            # (CI once read 0.64 of before there), under half from 50 s on.
            answered_by(
                "longer-cache-ttl",
                "reads stay in the cache, so far fewer requests cross the lossy hop",
                60,
                below("gateway.backend_fetches_rps", ratio=0.6),
            ),
        ),
        explanation=Explanation(
            what_happens="The link between the gateway and inventory loses some of the data sent over it. TCP does not report the loss; it retransmits after a timeout, so the affected calls arrive intact but hundreds of milliseconds late. The gateway's tail latency jumps; inventory measures its own requests as fast as ever.",
            why="TCP hides loss behind retransmission: the sender waits a retransmission timeout (at least 200 ms on Linux) before sending again. A few percent of lost packets therefore turn into a few percent of calls that are slower by whole timeouts, which shows in the p95 and p99 but hardly in the median, and not at all in the callee's metrics.",
            what_to_look_at="`gateway.p95_ms` up in steps of about 200 ms while `inventory.p95_ms` is unchanged: the gap between what the caller waited and what the callee spent is the network. Errors stay at zero. On real hosts `netstat -s` or `nstat` retransmission counters rise.",
            how_systems_answer="Find and fix the lossy link (a bad cable, a saturated switch buffer, a noisy Wi-Fi hop), measure latency from both sides of every hop, keep chatty calls off lossy or long paths (caching, batching), and cut the tail with timeouts near the healthy p99 and hedged requests.",
            further_reading=(
                "[RFC 6298: computing TCP's retransmission timer](https://www.rfc-editor.org/rfc/rfc6298)",
                "[Toxiproxy](https://github.com/Shopify/toxiproxy)",
                "Jeffrey Dean and Luiz André Barroso, *The Tail at Scale*, Communications of the ACM, 2013",
            ),
        ),
        load_rps=25,
    ),
    Scenario(
        slug="timeout-cascade",
        category="network",
        title="A timeout cascade",
        teaches="When every layer's timeout is no longer than its callee's, one slow hop times out the whole chain, and each layer's retries multiply the calls that reach it.",
        parameters=(
            Parameter(
                "delay_ms",
                "int",
                1500,
                "round-trip time added to each call from orders to inventory",
                200,
                10_000,
                unit="ms",
            ),
        ),
        # Each way of the hop carries half of the delay.
        apply=lambda p: {"hop:orders->inventory": {"latency_ms": p["delay_ms"] / 2}},
        metrics=(*REQUEST_METRICS, *CLIENT_METRICS, HOP, IN_FLIGHT),
        signature=signature(
            "every layer times out, and orders sends several times the calls it sent before",
            20,
            above("orders.client_attempts_rps", 5, ratio=3),
            above("users.error_ratio", 0.15),
        ),
        mitigations=(
            answered_by(
                "timeout-budget",
                "orders answers within the gateway's patience and only one layer retries: far fewer calls reach inventory",
                30,
                below("orders.client_attempts_rps", ratio=0.5),
                below("orders.p50_ms", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="The hop from orders to inventory becomes slower than orders' timeout. Orders times out and retries, three attempts of a second each; the gateway, whose timeout is also one second, gives up on orders after the first of them and retries too; users give up after two seconds and retry as well. Every order fails, slowly, and inventory receives many times the calls users made.",
            why="A timeout is a budget, and budgets along a chain must shrink as they go down: a caller has to wait longer than everything its callee may do (its timeout times its attempts, plus backoff). Here every layer waits as long as the one below, so each caller gives up while its callee is still working, and the callee, not told, goes on working and retrying for nobody. Retries at each layer multiply: three user attempts times two gateway attempts times three orders attempts is up to eighteen calls for one click.",
            what_to_look_at="`orders.client_attempts_rps` many times what it was, while no order succeeds: `users.error_ratio` climbs to the share of users who order, and `users.p95_ms` to several times the users' timeout. `orders.p50_ms` is about three seconds although the gateway stopped waiting after one: the gap is work done for nobody. `sdlab_client_calls_total` with outcome timeout rises at orders and at the gateway alike.",
            how_systems_answer="Budget timeouts per layer: each caller's timeout covers its callee's attempts, and the deeper the call the shorter its timeout. Better, propagate the deadline (gRPC deadlines, a request header) so each callee knows how long its caller will still wait, stops retrying when the budget is spent, and drops work whose caller has gone. Retry at one layer only, with a budget, so retries cannot multiply.",
            further_reading=(
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
                "[gRPC: deadlines](https://grpc.io/docs/guides/deadlines/)",
                "[Google SRE book: Addressing cascading failures](https://sre.google/sre-book/addressing-cascading-failures/)",
            ),
        ),
        load_rps=10,
        load_mix={"read_ratio": 0.6},
    ),
    Scenario(
        slug="partial-response",
        category="network",
        title="Responses cut short",
        teaches="A connection that closes after a number of bytes cuts responses in half: the server logged a 200, the caller got a truncated body, and only the caller can tell.",
        parameters=(
            Parameter(
                "limit_bytes",
                "int",
                300,
                "bytes each connection from inventory to the gateway carries before it is closed",
                50,
                100_000,
                unit="bytes",
            ),
        ),
        apply=lambda p: {"hop:gateway->inventory": {"limit_bytes": p["limit_bytes"]}},
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            HOP,
            CUT_RESPONSES,
        ),
        signature=signature(
            "the gateway retries product reads while inventory serves every one of them with a 200",
            20,
            above("gateway.client_retries_rps", 1.0),
            below("inventory.error_ratio", 0.01),
            above("gateway.error_ratio", 0.03),
        ),
        mitigations=(
            answered_by(
                "retries",
                "reads are idempotent: a few more retries on fresh connections get a whole body",
                30,
                below("gateway.error_ratio", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Something on the path between the gateway and inventory closes each connection once it has carried a few hundred bytes back. Inventory answers every request in full, with a 200; the gateway receives the first part of a response, then the end of the connection. The body is shorter than its Content-Length says, so the gateway counts the call as failed and retries it; some reads fail every attempt and reach users as errors.",
            why="HTTP over keep-alive connections frames each response by its Content-Length (or chunked encoding). A connection that ends before that many bytes arrive delivers a truncated body: a client that checks the framing sees a connection error, one that does not gets half a JSON document and a decode error, or worse, a short file it believes whole. The server wrote the whole response and recorded success, so its own metrics stay green.",
            what_to_look_at="`gateway.client_retries_rps` rises while `inventory.error_ratio` stays at 0: the failures exist only at the caller. `sdlab_client_calls_total` shows them as errors at the gateway, `sdlab_hop_cut_responses` counts the cuts on the hop, and `gateway.error_ratio` shows the reads that failed every attempt (users retry those in turn).",
            how_systems_answer="Check the framing (Content-Length, chunked terminators, checksums such as Content-MD5 or a digest) and treat a short body as a failure, never as data. Retry idempotent reads on a new connection, with backoff; resume large downloads with range requests. Then find what cuts the stream: a proxy's buffer or body limit, an idle timeout in a load balancer, a middlebox with a byte quota.",
            further_reading=(
                "[RFC 9112: HTTP/1.1 message framing (incomplete messages)](https://www.rfc-editor.org/rfc/rfc9112#section-8)",
                "[Toxiproxy: the limit_data toxic](https://github.com/Shopify/toxiproxy#limit_data)",
                "[Azure architecture: Retry pattern](https://learn.microsoft.com/en-us/azure/architecture/patterns/retry)",
            ),
        ),
        load_rps=20,
    ),
    Scenario(
        slug="connection-reset",
        category="network",
        title="Connections reset mid-response",
        teaches="A reset arrives as an error, not as silence: the caller knows at once that the call failed, but not whether the server did the work, and a retry after a short backoff usually gets through.",
        parameters=(
            Parameter(
                "reset_percent",
                "float",
                40.0,
                "share of the cache's responses cut by a TCP reset",
                1,
                90,
                unit="%",
            ),
        ),
        apply=lambda p: {"hop:gateway->cache": {"reset_response_percent": p["reset_percent"]}},
        metrics=(
            *REQUEST_METRICS,
            *CLIENT_METRICS,
            HOP,
            CUT_RESPONSES,
        ),
        signature=signature(
            "the gateway's calls to the cache fail with resets and are retried, while the cache answers all of them",
            20,
            above("gateway.client_retries_rps", 2.0),
            below("cache.error_ratio", 0.01),
            above("gateway.error_ratio", 0.03),
        ),
        mitigations=(
            answered_by(
                "retries",
                "a few more retries, spread by jitter, get nearly every read through",
                30,
                below("gateway.error_ratio", ratio=0.5),
            ),
        ),
        explanation=Explanation(
            what_happens="Something between the gateway and the cache resets a share of the connections while a response is on its way: the gateway reads the first bytes, then gets `connection reset by peer`. The cache answered every request; the gateway counts the calls as failed and retries them, and the reads whose every attempt is reset fail for users.",
            why="A TCP reset (RST) ends a connection at once and tells the other side so, unlike a partition, which says nothing. Load balancers, NAT and conntrack tables, firewalls and servers that crash or restart all send them. The caller learns at once that its call failed, but not how far the server got: the work may be done and only the answer lost, which is why only idempotent requests can be retried blindly.",
            what_to_look_at="`gateway.client_retries_rps` rises and `sdlab_client_calls_total` counts errors at the gateway, while `cache.error_ratio` stays at 0: the cache never saw a failure. `sdlab_hop_cut_responses` counts the resets on the hop. Latency grows by the retries' backoff and new connections, tens of milliseconds, not the seconds a partition costs: a reset fails fast.",
            how_systems_answer="Retry idempotent calls after a reset, with exponential backoff and jitter, on a new connection; make writes idempotent (idempotency keys) so they can be retried too. A circuit breaker stops hammering a path that keeps resetting. Then find the source: an idle timeout shorter than the client's keep-alive, a full conntrack table, a load balancer draining, a server crashing.",
            further_reading=(
                "[RFC 9293: TCP, reset processing](https://www.rfc-editor.org/rfc/rfc9293#section-3.5.3)",
                "[Timeouts, retries and backoff with jitter (Amazon Builders' Library)](https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/)",
                "[Making retries safe with idempotent APIs (Amazon Builders' Library)](https://aws.amazon.com/builders-library/making-retries-safe-with-idempotent-APIs/)",
            ),
        ),
        load_rps=20,
    ),
]
