import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus import exports

from apps.tenants.health import readiness_problems
from apps.tenants.models import Organisation
from apps.tenants.slugs import slug_problem


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    problems = readiness_problems()
    if problems:
        return JsonResponse({"status": "unavailable", "failing": problems}, status=503)
    return JsonResponse({"status": "ready"})


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text. With METRICS_TOKEN set, only a scraper presenting it gets in."""
    if not scrape_allowed(request):
        return scrape_refused()
    return exports.ExportToDjangoView(request)


def scrape_allowed(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set, only a scraper presenting it (Authorization: Bearer)."""
    token = settings.METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def scrape_refused() -> HttpResponse:
    return HttpResponse("metrics need the scrape token\n", status=401, content_type="text/plain")


def organisation_url(request: HttpRequest, slug: str) -> str:
    port = request.get_port()
    suffix = "" if port in ("80", "443") else f":{port}"
    return f"{request.scheme}://{slug}.{settings.BASE_DOMAIN}{suffix}/"


def landing(request: HttpRequest) -> HttpResponse:
    """The public site: what the product is, and the way to one's organisation."""
    error, status = None, 200
    slug = (request.GET.get("organisation") or "").strip().lower()
    if slug:
        error, status = slug_problem(slug), 422
        if error is None:
            if Organisation.objects.filter(slug=slug).exists():
                return HttpResponseRedirect(organisation_url(request, slug) + "accounts/login/")
            error, status = f"No organisation uses the address “{slug}”.", 404
    return render(request, "tenants/landing.html", {"error": error, "slug": slug}, status=status)
