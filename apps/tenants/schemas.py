"""Typed access to the schema-switching database connection of django-tenants."""

from typing import cast

from django.db import connection
from django_tenants.postgresql_backend.base import DatabaseWrapper

# Advisory lock guarding the template schema: organisation_create holds it shared while it
# clones, migrate_schemas holds it exclusive while it migrates.
TEMPLATE_LOCK_KEY = 0x5D1AB7E7


def tenant_connection() -> DatabaseWrapper:
    return cast(DatabaseWrapper, connection)


def template_lock_shared() -> None:
    """Held until the current transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [TEMPLATE_LOCK_KEY])
