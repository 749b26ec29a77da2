import logging

from django.db import connection
from opentelemetry import trace

from apps.tenants.context import current_tenant


class RequestContextFilter(logging.Filter):
    """Adds the tenant schema and the current trace and span ids to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else ""
        record.span_id = format(span.span_id, "016x") if span.is_valid else ""
        tenant = current_tenant.get()
        if tenant == "public":
            # Celery tasks switch the connection, not the context variable.
            tenant = getattr(connection, "schema_name", "public") or "public"
        record.tenant = tenant
        return True
