from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.template.loader import render_to_string
from django.urls import set_urlconf

from apps.tenants.context import current_tenant
from apps.tenants.resolve import organisation_for_host
from apps.tenants.schemas import tenant_connection

# Probes and scrapes must answer without the database: they never resolve a tenant.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
OPS_PREFIXES = ("/internal/",)  # scrape targets and their metrics, for Prometheus
OPS_URLCONF = "config.urls_ops"


class OrganisationMiddleware:
    """Selects the organisation's schema and URL conf from the host, or the public site.

    Sets `request.organisation` (None on the public site) for access checks, and
    `request.tenant` (the organisation, or django-tenants' public tenant) for django-tenants.
    An address under BASE_DOMAIN that names no organisation is a 404, never the public
    site, so a typo cannot look like a working workspace.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        connection = tenant_connection()
        connection.set_schema_to_public()
        if request.path in OPS_PATHS or request.path.startswith(OPS_PREFIXES):
            request.organisation = None  # type: ignore[attr-defined]
            request.tenant = connection.tenant  # type: ignore[attr-defined]
            request.urlconf = OPS_URLCONF
            set_urlconf(OPS_URLCONF)
            return self.get_response(request)
        match = organisation_for_host(request.get_host())
        if match.unknown_organisation:
            body = render_to_string("tenants/unknown_organisation.html", {"request": request})
            return HttpResponseNotFound(body)
        request.organisation = match.organisation  # type: ignore[attr-defined]
        if match.organisation is None:
            request.tenant = connection.tenant  # type: ignore[attr-defined]
            urlconf = settings.PUBLIC_SCHEMA_URLCONF
        else:
            connection.set_tenant(match.organisation)
            request.tenant = match.organisation  # type: ignore[attr-defined]
            urlconf = settings.ROOT_URLCONF
        request.urlconf = urlconf
        set_urlconf(urlconf)
        token = current_tenant.set(connection.schema_name)
        try:
            return self.get_response(request)
        finally:
            current_tenant.reset(token)
