"""OpenTelemetry for the platform itself: request and task spans, exported by setting."""

import logging

from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)
_configured = False


def telemetry_setup(*, service_name: str | None = None, celery: bool = False) -> None:
    """Installs a tracer provider and instruments Django (and Celery). Idempotent."""
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name or settings.OTEL_SERVICE_NAME})
    )
    exporter_name = settings.OTEL_TRACES_EXPORTER
    if exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter_name != "none":
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={exporter_name!r} is not one of: none, console, otlp"
        )
    trace.set_tracer_provider(provider)

    from opentelemetry.instrumentation.django import DjangoInstrumentor

    DjangoInstrumentor().instrument(is_sql_commentor_enabled=False)
    if celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()
