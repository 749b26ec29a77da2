"""OpenTelemetry spans across the sandbox's hops, exported by OTLP when a collector
address is given (SANDBOX_OTLP_ENDPOINT, e.g. http://collector:4318). Without one, the
services still pass W3C traceparent along and log trace ids; the SDK is not even loaded,
so a sandbox stays small and starts fast."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

ENDPOINT_VARIABLE = "SANDBOX_OTLP_ENDPOINT"
NO_SPAN: AbstractContextManager[None] = nullcontext()  # reusable: it keeps no state


class Tracing:
    def __init__(self, service: str) -> None:
        self.service = service
        self.endpoint = os.environ.get(ENDPOINT_VARIABLE, "").rstrip("/")
        self.tracer: Any = None
        self.provider: Any = None
        if self.endpoint:
            self._start()

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def _start(self) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create(
            {
                "service.name": f"sandbox-{self.service}",
                "sandbox.session": os.environ.get("SANDBOX_SESSION", ""),
            }
        )
        self.provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=f"{self.endpoint}/v1/traces", timeout=2)
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        self.tracer = self.provider.get_tracer("sandbox")

    def server_span(
        self, name: str, headers: Mapping[str, str], **attributes: Any
    ) -> AbstractContextManager[Any]:
        """A SERVER span continuing the caller's trace (from its traceparent header); a
        shared context of None when tracing is off (every request passes here)."""
        if not self.enabled:
            return NO_SPAN
        return self._server_span(name, headers, attributes)

    @contextmanager
    def _server_span(
        self, name: str, headers: Mapping[str, str], attributes: dict[str, Any]
    ) -> Iterator[Any]:
        from opentelemetry.propagate import extract
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(
            name, context=extract(dict(headers)), kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield span

    def client_span(
        self, name: str, headers: dict[str, str], **attributes: Any
    ) -> AbstractContextManager[Any]:
        """A CLIENT span for one attempt; writes its traceparent into `headers`. A shared
        context of None when tracing is off."""
        if not self.enabled:
            return NO_SPAN
        return self._client_span(name, headers, attributes)

    @contextmanager
    def _client_span(
        self, name: str, headers: dict[str, str], attributes: dict[str, Any]
    ) -> Iterator[Any]:
        from opentelemetry.propagate import inject
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            inject(headers)
            yield span

    def trace_id(self, span: Any) -> str | None:
        if span is None:
            return None
        context = span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
