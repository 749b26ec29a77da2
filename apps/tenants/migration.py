"""migrate_schemas that keeps the template schema current and skips schemas already up to date.

Deploys must not slow down with the number of organisations: one query finds the schemas
that lack a migration, and only those are migrated, in parallel processes.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.loader import MigrationLoader
from django_tenants.migration_executors import get_executor as django_tenants_executor
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations
from django_tenants.migration_executors.multiproc import MultiprocessingExecutor
from django_tenants.utils import get_public_schema_name
from psycopg import sql

from apps.tenants.models import Organisation
from apps.tenants.schemas import TEMPLATE_LOCK_KEY

log = logging.getLogger(__name__)


@contextmanager
def template_lock_exclusive() -> Iterator[None]:
    """Holds the template lock on a connection of its own: the migration executor closes
    the default connection before it forks its workers."""
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with own.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK_KEY])
        yield
    finally:
        with own.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK_KEY])
        own.close()


def migrations_known() -> set[tuple[str, str]]:
    return set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def schemas_behind(schema_names: list[str]) -> list[str]:
    """The schemas among `schema_names` missing a migration (or the schema itself)."""
    if not schema_names:
        return []
    known = migrations_known()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'django_migrations' AND table_schema = ANY(%s)",
            [schema_names],
        )
        with_table = {row[0] for row in cursor.fetchall()}
        applied: dict[str, set[tuple[str, str]]] = {name: set() for name in with_table}
        if with_table:
            union = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {lit}, app, name FROM {tbl}").format(
                    lit=sql.Literal(name), tbl=sql.Identifier(name, "django_migrations")
                )
                for name in sorted(with_table)
            )
            cursor.execute(union.as_string(connection.connection))
            for schema, app, name in cursor.fetchall():
                applied[schema].add((app, name))
    return [name for name in schema_names if not known <= applied.get(name, set())]


class OutdatedSchemasExecutor(MigrationExecutor):
    """Migrates public first, then the template and every organisation that is behind."""

    codename = "outdated-only"

    def run_migrations(self, tenants: list[str] | None = None) -> None:
        tenants = list(tenants or [])
        public = get_public_schema_name()
        if public in tenants:
            run_migrations(self.args, self.options, self.codename, public)
            tenants.remove(public)
            if not tenants:
                return
        template = settings.TENANT_TEMPLATE_SCHEMA
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                .format(sql.Identifier(template))
                .as_string(connection.connection)
            )
        if template not in tenants:
            tenants.insert(0, template)
        # Targeted runs (an app label, --fake, --plan...) go to every named schema as asked.
        targeted = any(
            self.options.get(flag)
            for flag in ("app_label", "migration_name", "fake", "fake_initial", "plan", "prune")
        )
        todo = tenants if targeted else schemas_behind(tenants)
        if not todo:
            self._report(0, len(tenants))
            return
        # While the template changes no organisation may be cloned from it: sign-ups wait
        # on the lock (organisation_create holds it shared), then clone the migrated
        # template. Organisations made before the lock are found by asking again under it.
        with template_lock_exclusive():
            if not targeted and not self.options.get("schema_name"):
                tenants = [template, *Organisation.objects.values_list("schema_name", flat=True)]
                todo = schemas_behind(tenants)
            self._report(len(todo), len(tenants) - len(todo))
            if len(todo) <= 1:
                for name in todo:
                    run_migrations(self.args, self.options, self.codename, name)
                return
            MultiprocessingExecutor(self.args, self.options).run_migrations(tenants=todo)

    def _report(self, todo: int, skipped: int) -> None:
        if int(self.options.get("verbosity", 1)) >= 1:
            print(  # noqa: T201
                f"migrate_schemas: {todo} schema(s) to migrate, {skipped} already up to date"
            )

    def run_multi_type_migrations(self, tenants: list) -> None:
        raise NotImplementedError("This platform has a single tenant type.")


def get_executor(codename: str | None = None) -> type[MigrationExecutor]:
    """Ours by default; `--executor standard|multiprocessing` still picks django-tenants' own."""
    if codename in (None, OutdatedSchemasExecutor.codename):
        return OutdatedSchemasExecutor
    return django_tenants_executor(codename)
