"""The scenario catalog for learners: categories, search, and one page per scenario with
its explanation, parameters, signature and the mitigations that answer it."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.access import role_required
from apps.accounts.models import Role
from apps.scenarios.prose import MARKDOWN
from apps.scenarios.selectors import catalog_categories, catalog_scenario_get, catalog_scenarios
from sandbox.spec import CATEGORIES


@role_required(Role.LEARNER)
@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    context: dict[str, Any] = {"categories": catalog_categories(), "q": search}
    if search:
        context["results"] = catalog_scenarios(search=search)
    return render(request, "scenarios/catalog/index.html", context)


@role_required(Role.LEARNER)
@require_GET
def catalog_category(request: HttpRequest, category: str) -> HttpResponse:
    if category not in CATEGORIES:
        raise Http404("No such category")
    context = {
        "category": {"slug": category, "title": CATEGORIES[category]},
        "scenarios": catalog_scenarios(category=category),
    }
    return render(request, "scenarios/catalog/category.html", context)


@role_required(Role.LEARNER)
@require_GET
def catalog_scenario(request: HttpRequest, slug: str) -> HttpResponse:
    scenario = catalog_scenario_get(slug=slug)
    if scenario is None:
        raise Http404("No such scenario")
    sections = [
        {"heading": s["heading"], "html": MARKDOWN.render(s["markdown"])}
        for s in scenario["explanation_sections"]
    ]
    return render(
        request,
        "scenarios/catalog/scenario.html",
        {"scenario": scenario, "sections": sections},
    )
