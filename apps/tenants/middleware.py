from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.template.loader import render_to_string
from django.urls import set_urlconf

from apps.tenants.context import current_tenant
from apps.tenants.resolve import organisation_for_host
from apps.tenants.schemas import tenant_connection


class OrganisationMiddleware:
    """Selects the organisation's schema and URL conf from the host, or the public site.

    An address under BASE_DOMAIN that names no organisation is a 404, never the public
    site, so a typo cannot look like a working workspace.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_connection().set_schema_to_public()
        match = organisation_for_host(request.get_host())
        if match.unknown_organisation:
            body = render_to_string("tenants/unknown_organisation.html", {"request": request})
            return HttpResponseNotFound(body)
        request.tenant = match.organisation  # type: ignore[attr-defined]
        if match.organisation is None:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            schema = tenant_connection().schema_name
        else:
            tenant_connection().set_tenant(match.organisation)
            request.urlconf = settings.ROOT_URLCONF
            schema = match.organisation.schema_name
        set_urlconf(request.urlconf)
        token = current_tenant.set(schema)
        try:
            return self.get_response(request)
        finally:
            current_tenant.reset(token)
