"""Reads for lab pages: the catalog a lab page offers, and the context of one lab page
(which the tutorial run page reuses around its guide); and the scenario catalog learners
browse."""

from typing import Any

from django.conf import settings

from apps.scenarios.models import LabSession
from sandbox.catalog import MITIGATIONS, SCENARIOS
from sandbox.spec import CATEGORIES, Scenario


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


# -- the scenario catalog as learners browse it (pages and API)


def _catalog_entry(scenario: Scenario) -> dict[str, Any]:
    """A scenario as the catalog shows it: its spec, its explanation in sections, and each
    mitigation that answers it with what that mitigation does and what it changes."""
    described = scenario.describe()
    described["explanation_sections"] = [
        {"heading": heading, "markdown": text}
        for heading, text in (scenario.explanation.sections() if scenario.explanation else [])
    ]
    described["mitigations"] = [
        {
            **MITIGATIONS[effect.mitigation].describe(),
            "effect": {
                "description": effect.signature.description,
                "within_seconds": effect.signature.within_seconds,
                "expectations": [e.describe() for e in effect.signature.expectations],
            },
        }
        for effect in scenario.mitigations
    ]
    return described


def catalog_categories() -> list[dict[str, Any]]:
    """Every category, in the catalog's order, with how many scenarios it holds."""
    counts: dict[str, int] = {}
    for scenario in SCENARIOS.values():
        counts[scenario.category] = counts.get(scenario.category, 0) + 1
    return [
        {"slug": slug, "title": title, "count": counts.get(slug, 0)}
        for slug, title in CATEGORIES.items()
    ]


def catalog_scenarios(*, category: str = "", search: str = "") -> list[dict[str, Any]]:
    """Scenarios of `category` (all if empty) whose title, slug or lesson holds every word
    of `search`, ordered by category then title."""
    words = search.lower().split()
    found = []
    for scenario in SCENARIOS.values():
        if category and scenario.category != category:
            continue
        haystack = f"{scenario.slug} {scenario.title} {scenario.teaches}".lower()
        if all(word in haystack for word in words):
            found.append(scenario)
    order = list(CATEGORIES)
    found.sort(key=lambda s: (order.index(s.category), s.title.lower()))
    return [_catalog_entry(s) for s in found]


def catalog_scenario_get(*, slug: str) -> dict[str, Any] | None:
    scenario = SCENARIOS.get(slug)
    return _catalog_entry(scenario) if scenario is not None else None
