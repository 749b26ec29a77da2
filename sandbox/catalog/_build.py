"""Shorthands for writing catalog entries."""

from sandbox.spec import Expectation, MetricSpec, MitigationEffect, Signature

REQUEST_METRICS = (
    MetricSpec(
        "sdlab_requests_total",
        "counter",
        "Requests served, by route and status.",
        ("service", "route", "status"),
    ),
    MetricSpec(
        "sdlab_request_duration_seconds",
        "histogram",
        "Time to serve a request.",
        ("service", "route"),
    ),
)
CLIENT_METRICS = (
    MetricSpec(
        "sdlab_client_attempts_total",
        "counter",
        "Attempts sent to a dependency.",
        ("service", "dependency"),
    ),
    MetricSpec(
        "sdlab_client_retries_total",
        "counter",
        "Retries sent to a dependency.",
        ("service", "dependency"),
    ),
    MetricSpec(
        "sdlab_client_calls_total",
        "counter",
        "Calls to a dependency by outcome.",
        ("service", "dependency", "outcome"),
    ),
)


def above(
    figure: str, value: float | None = None, *, ratio: float | None = None, of: str | None = None
) -> Expectation:
    return Expectation(figure, ">", value=value, ratio=ratio, relative_to=of)


def below(
    figure: str, value: float | None = None, *, ratio: float | None = None, of: str | None = None
) -> Expectation:
    return Expectation(figure, "<", value=value, ratio=ratio, relative_to=of)


def signature(description: str, within_s: float, *expectations: Expectation) -> Signature:
    return Signature(tuple(expectations), within_s, description)


def answered_by(
    mitigation: str, description: str, within_s: float, *expectations: Expectation
) -> MitigationEffect:
    return MitigationEffect(mitigation, signature(description, within_s, *expectations))


HOP = MetricSpec(
    "sdlab_hop_toxic", "gauge", "A toxic's setting on a hop.", ("service", "hop", "toxic")
)
IN_FLIGHT = MetricSpec("sdlab_requests_in_flight", "gauge", "Requests being served.", ("service",))
QUEUE = (
    MetricSpec("sdlab_queue_depth", "gauge", "Messages waiting.", ("service",)),
    MetricSpec(
        "sdlab_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest waiting message.",
        ("service",),
    ),
    MetricSpec("sdlab_worker_processed_total", "counter", "Orders fulfilled.", ("service",)),
    MetricSpec(
        "sdlab_worker_consumers", "gauge", "Orders the worker fulfils at once.", ("service",)
    ),
)
POOL = (
    MetricSpec("sdlab_pool_in_use", "gauge", "Resources of a pool in use.", ("service", "pool")),
    MetricSpec("sdlab_pool_waiting", "gauge", "Callers waiting for a pool.", ("service", "pool")),
    MetricSpec(
        "sdlab_pool_timeouts_total", "counter", "Callers that gave up waiting.", ("service", "pool")
    ),
)
QUEUE_REFUSED = MetricSpec(
    "sdlab_queue_refused_total",
    "counter",
    "Messages refused because the queue was full.",
    ("service",),
)
