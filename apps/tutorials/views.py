"""Tutorial pages for an organisation's members: the catalogue and one tutorial."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.access import role_required
from apps.accounts.models import Role
from apps.scenarios.prose import MARKDOWN
from apps.tutorials.selectors import series_title, tutorial_get, tutorials_visible


@role_required(Role.LEARNER)
@require_GET
def tutorials(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    found = tutorials_visible(search=search)
    groups: dict[str, list] = {}
    for tutorial in found["platform"]:
        groups.setdefault(series_title(tutorial.series), []).append(tutorial)
    context = {"groups": groups, "own": found["own"], "q": search}
    return render(request, "tutorials/list.html", context)


@role_required(Role.LEARNER)
@require_GET
def tutorial(request: HttpRequest, slug: str) -> HttpResponse:
    found = tutorial_get(slug=slug)
    if found is None:
        raise Http404("No such tutorial")
    item, own = found
    steps = [
        {"step": step, "html": MARKDOWN.render(step.body), "checks": step.checks}
        for step in item.steps.all()
    ]
    context = {
        "tutorial": item,
        "own": own,
        "intro": MARKDOWN.render(item.body),
        "steps": steps,
        "series": series_title(item.series),
    }
    return render(request, "tutorials/tutorial.html", context)
