"""Operational endpoints, served on every host before any tenant is resolved
(apps.tenants.middleware routes these paths here, so they answer without the database)."""

from django.urls import path

from apps.scenarios import prometheus
from apps.tenants.views import healthz, metrics, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="prometheus-django-metrics"),
    path("internal/prometheus/targets", prometheus.targets, name="prometheus-targets"),
    path(
        "internal/prometheus/sandboxes/<str:schema>/<int:session_id>/metrics",
        prometheus.sandbox_metrics,
        name="prometheus-sandbox-metrics",
    ),
]
