"""Prometheus finds every running sandbox here (HTTP service discovery) and scrapes it
through the platform, since a local sandbox listens on a Unix socket only.

Both answer on any host before tenant resolution, behind METRICS_TOKEN when it is set.
The proxy serves only sandboxes the relay's registry lists: no address comes from the
request. Prometheus must keep `honor_labels` off for these targets, so a sandbox cannot
forge another's `organisation` or `session` label (they become `exported_...`)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.scenarios.events import relay_key, running_sandboxes
from apps.scenarios.metrics import lab_sessions_collector_register
from apps.tenants.models import Organisation
from apps.tenants.views import scrape_allowed, scrape_refused
from sandbox.client import SandboxClient

# Only the web process serves /metrics from here: it counts sessions by state at scrape time.
lab_sessions_collector_register()


@require_GET
@never_cache
def targets(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        return scrape_refused()
    running = running_sandboxes()
    schemas = {key.rpartition(":")[0] for key in running}
    slugs = dict(
        Organisation.objects.filter(schema_name__in=schemas).values_list("schema_name", "slug")
    )
    target = settings.PROMETHEUS_SD_TARGET or request.get_host()
    groups = []
    for key in sorted(running):
        schema, _, session_id = key.rpartition(":")
        if schema not in slugs:
            continue
        path = f"/internal/prometheus/sandboxes/{schema}/{session_id}/metrics"
        groups.append(
            {
                "targets": [target],
                "labels": {
                    "__metrics_path__": path,
                    "organisation": slugs[schema],
                    "session": session_id,
                },
            }
        )
    return JsonResponse(groups, safe=False)


@require_GET
@never_cache
def sandbox_metrics(request: HttpRequest, schema: str, session_id: int) -> HttpResponse:
    if not scrape_allowed(request):
        return scrape_refused()
    address = running_sandboxes().get(relay_key(schema, session_id))
    if not address:
        return HttpResponse("no such running sandbox\n", status=404, content_type="text/plain")
    try:
        text = SandboxClient(address, timeout=3.0).metrics()
    except OSError:
        return HttpResponse("the sandbox did not answer\n", status=503, content_type="text/plain")
    return HttpResponse(text, content_type="text/plain; version=0.0.4")
