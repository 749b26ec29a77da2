"""Reads of tutorials: the platform's (public schema) and the organisation's own."""

from django.db.models import Count, QuerySet
from django_tenants.utils import schema_context

from apps.tutorials.content import SERIES
from apps.tutorials.models import Tutorial


def _listed(queryset: QuerySet[Tutorial], search: str) -> list[Tutorial]:
    if search:
        queryset = queryset.filter(title__icontains=search) | queryset.filter(
            summary__icontains=search
        )
    return list(queryset.annotate(step_count=Count("steps")).order_by("series", "title"))


def tutorials_visible(*, search: str = "") -> dict[str, list[Tutorial]]:
    """Called in an organisation's schema: {"platform": [...], "own": [...]}."""
    own = _listed(Tutorial.objects.all(), search)
    with schema_context("public"):
        platform = _listed(Tutorial.objects.all(), search)
    return {"platform": platform, "own": own}


def tutorial_get(*, slug: str) -> tuple[Tutorial, bool] | None:
    """The organisation's own tutorial of that slug, else the platform's; and whether it
    is the organisation's. Steps are fetched with it."""
    own = Tutorial.objects.prefetch_related("steps").filter(slug=slug).first()
    if own is not None:
        return own, True
    with schema_context("public"):
        platform = Tutorial.objects.prefetch_related("steps").filter(slug=slug).first()
        if platform is not None:
            list(platform.steps.all())  # fetched here, in the schema it lives in
    return (platform, False) if platform is not None else None


def series_title(slug: str) -> str:
    return SERIES.get(slug, slug)
