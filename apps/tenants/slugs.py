"""What makes a good organisation slug: it becomes a hostname label and a schema name."""

import re

from apps.tenants.errors import ValidationFailed

SLUG_MIN, SLUG_MAX = 3, 40
SLUG_PATTERN = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")

# Names that would shadow the platform's own hosts or confuse users.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "auth",
        "billing",
        "blog",
        "cdn",
        "dashboard",
        "dev",
        "docs",
        "ftp",
        "grafana",
        "help",
        "imap",
        "internal",
        "login",
        "logout",
        "loki",
        "mail",
        "media",
        "metrics",
        "mx",
        "ns1",
        "ns2",
        "pop",
        "postgres",
        "prometheus",
        "public",
        "redis",
        "root",
        "sandbox",
        "sandboxes",
        "signup",
        "smtp",
        "staging",
        "static",
        "status",
        "support",
        "system",
        "tempo",
        "template",
        "test",
        "www",
        "www1",
        "www2",
    }
)


def slug_problem(slug: str) -> str | None:
    """Returns why `slug` cannot name an organisation, or None if it can."""
    if not slug:
        return "Enter an address for the organisation."
    if len(slug) < SLUG_MIN or len(slug) > SLUG_MAX:
        return f"The address must be {SLUG_MIN} to {SLUG_MAX} characters long."
    if not SLUG_PATTERN.match(slug):
        return (
            "The address may use lowercase letters, digits and single hyphens, "
            "must start with a letter and must not end with a hyphen."
        )
    if slug in RESERVED_SLUGS or slug.startswith(("pg_", "tenant")):
        return f"“{slug}” is reserved; choose another address."
    return None


def slug_validate(slug: str) -> str:
    problem = slug_problem(slug)
    if problem:
        raise ValidationFailed(problem, extra={"field": "slug", "value": slug})
    return slug


def schema_name_for(slug: str) -> str:
    """Slugs hold no underscore, so replacing hyphens cannot make two slugs collide."""
    return "org_" + slug.replace("-", "_")
