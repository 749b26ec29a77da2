from django.conf import settings
from django.http import HttpRequest


def organisation(request: HttpRequest) -> dict:
    return {
        "organisation": getattr(request, "organisation", None),
        "base_domain": settings.BASE_DOMAIN,
    }
