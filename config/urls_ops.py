"""Operational endpoints served on every host (public site and organisations)."""

from django.urls import path
from django_prometheus import exports

from apps.tenants.views import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", exports.ExportToDjangoView, name="prometheus-django-metrics"),
]
