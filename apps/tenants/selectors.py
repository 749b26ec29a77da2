from dataclasses import dataclass

from apps.tenants.models import Organisation
from apps.tenants.slugs import schema_name_for, slug_validate


@dataclass(frozen=True)
class SlugAvailability:
    slug: str
    available: bool
    message: str


def slug_availability(*, slug: str) -> SlugAvailability:
    """Whether `slug` can name a new organisation; raises ValidationFailed if it never could."""
    slug = slug_validate((slug or "").strip().lower())
    taken = (
        Organisation.objects.filter(slug=slug).exists()
        or Organisation.objects.filter(schema_name=schema_name_for(slug)).exists()
    )
    if taken:
        return SlugAvailability(slug, False, f"The address “{slug}” is already taken.")
    return SlugAvailability(slug, True, f"“{slug}” is available.")
