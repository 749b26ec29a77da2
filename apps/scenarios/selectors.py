"""Reads for lab pages: the catalog a lab page offers, and the context of one lab page
(which the tutorial run page reuses around its guide)."""

from typing import Any

from django.conf import settings

from apps.scenarios.models import LabSession
from sandbox.catalog import MITIGATIONS, SCENARIOS


def lab_catalog() -> dict[str, list[dict[str, Any]]]:
    return {
        "scenarios": sorted(
            (s.describe() for s in SCENARIOS.values()), key=lambda s: (s["category"], s["title"])
        ),
        "mitigations": sorted(
            (m.describe() for m in MITIGATIONS.values()), key=lambda m: m["title"]
        ),
    }


def lab_page_context(*, session: LabSession, driver: bool) -> dict[str, Any]:
    return {
        "session": session,
        "driver": driver,
        "catalog": lab_catalog(),
        "grafana": bool(settings.GRAFANA_URL),
        "grafana_dashboard": settings.GRAFANA_LAB_DASHBOARD,
    }
