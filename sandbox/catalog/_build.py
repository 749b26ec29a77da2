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
