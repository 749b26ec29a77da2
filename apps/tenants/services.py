"""Writes to organisations and their schemas."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django_tenants.utils import schema_exists

from apps.tenants.cloning import schema_clone
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Domain, Organisation, Plan
from apps.tenants.schemas import template_lock_shared, tenant_connection
from apps.tenants.slugs import schema_name_for, slug_validate

log = logging.getLogger(__name__)

NAME_MAX = 120
DEFAULT_PLAN = {"slug": "starter", "name": "Starter", "seats": 25, "sandbox_quota": 5}


def organisation_domain_for(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def plan_default() -> Plan:
    plan, _ = Plan.objects.get_or_create(slug=DEFAULT_PLAN["slug"], defaults=DEFAULT_PLAN)
    return plan


def tenant_template_ready() -> bool:
    return schema_exists(settings.TENANT_TEMPLATE_SCHEMA)


@transaction.atomic
def organisation_create(*, name: str, slug: str, plan: Plan | None = None) -> Organisation:
    """Creates an organisation, its schema (a clone of the migrated template) and its domain.

    Runs in one transaction: a failure leaves no row and no schema behind.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Enter the organisation's name.", extra={"field": "name"})
    if len(name) > NAME_MAX:
        raise ValidationFailed(
            "The name is too long (120 characters at most).", extra={"field": "name"}
        )
    slug = slug_validate((slug or "").strip().lower())
    schema_name = schema_name_for(slug)
    if Organisation.objects.filter(slug=slug).exists() or schema_exists(schema_name):
        raise Conflict(
            f"The address “{slug}” is already taken; choose another.",
            extra={"field": "slug", "value": slug},
        )
    if not tenant_template_ready():
        raise RuntimeError(
            f"The template schema {settings.TENANT_TEMPLATE_SCHEMA!r} does not exist: "
            "run `manage.py migrate_schemas` first."
        )

    tenant_connection().set_schema_to_public()
    template_lock_shared()
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(
                name=name, slug=slug, schema_name=schema_name, plan=plan or plan_default()
            )
    except IntegrityError as exc:  # a concurrent sign-up took the slug between check and insert
        raise Conflict(
            f"The address “{slug}” is already taken; choose another.",
            extra={"field": "slug", "value": slug},
        ) from exc
    # The template's rows come along (django_migrations too): the clone is fully migrated.
    schema_clone(template=settings.TENANT_TEMPLATE_SCHEMA, target=schema_name)
    Domain.objects.create(
        domain=organisation_domain_for(slug), tenant=organisation, is_primary=True
    )
    log.info("organisation created", extra={"organisation": slug})
    return organisation


def organisation_delete(*, organisation: Organisation) -> None:
    """Drops the organisation's schema with the row: this destroys all of its data."""
    tenant_connection().set_schema_to_public()
    organisation.delete(force_drop=True)
