"""Requests are traced, and log lines carry the trace id and the tenant."""

import json
import logging

import httpx
from django.conf import settings
from django_tenants.utils import tenant_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.tenants.context import current_tenant
from apps.tenants.logging import RequestContextFilter
from config.telemetry import telemetry_setup
from tests.conftest import host_of
from tests.support.otlp import otlp_receiver
from tests.support.servers import asgi_server, wait_for


def in_memory_spans() -> InMemorySpanExporter:
    telemetry_setup()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_a_request_makes_a_server_span(site_client, org_a):
    exporter = in_memory_spans()
    site_client(org_a).get("/accounts/login/")
    names = [span.name for span in exporter.get_finished_spans()]
    assert any("accounts/login" in name for name in names), names


def json_line(record: logging.LogRecord) -> dict:
    formatter_config: dict = settings.LOGGING["formatters"]["json"]
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(
        formatter_config["fmt"], rename_fields=formatter_config["rename_fields"]
    )
    RequestContextFilter().filter(record)
    return json.loads(formatter.format(record))


def make_record() -> logging.LogRecord:
    return logging.LogRecord(
        "sdlab.test", logging.INFO, __file__, 1, "something happened", None, None
    )


def test_log_lines_are_json_with_trace_id_and_tenant(org_a):
    telemetry_setup()
    tracer = trace.get_tracer("tests")
    token = current_tenant.set(org_a.schema_name)
    try:
        with tracer.start_as_current_span("work") as span:
            line = json_line(make_record())
            expected_trace = format(span.get_span_context().trace_id, "032x")
    finally:
        current_tenant.reset(token)
    assert line["message"] == "something happened"
    assert line["level"] == "INFO"
    assert line["tenant"] == org_a.schema_name
    assert line["trace_id"] == expected_trace


def test_task_log_lines_take_the_tenant_from_the_connection(org_a):
    with tenant_context(org_a):
        line = json_line(make_record())
    assert line["tenant"] == org_a.schema_name
    assert line["trace_id"] == ""


def test_the_web_process_exports_request_spans_over_otlp_when_switched_on(committed_organisations):
    org_a = committed_organisations("Org A")
    with (
        otlp_receiver() as receiver,
        asgi_server(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        ) as port,
    ):
        response = httpx.get(
            f"http://127.0.0.1:{port}/accounts/login/", headers={"Host": f"{host_of(org_a)}:{port}"}
        )
        assert response.status_code == 200
        wait_for(
            lambda: any("accounts/login" in name for name in receiver.span_names()),
            "the request's span to reach the receiver",
        )
    assert {s["service"] for s in receiver.spans} == {"sdlab-web"}
