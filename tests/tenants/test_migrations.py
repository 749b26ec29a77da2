from django.core.management import call_command
from django.db import connection

from apps.tenants.migration import schemas_behind


def test_every_organisation_is_up_to_date_after_creation(org_a, org_b):
    assert schemas_behind([org_a.schema_name, org_b.schema_name, "tenant_template"]) == []


def test_a_schema_missing_a_migration_is_found_and_only_it(org_a, org_b):
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{org_a.schema_name}".django_migrations '
            "WHERE app = 'scenarios' AND name = '0001_initial'"
        )
    assert schemas_behind([org_a.schema_name, org_b.schema_name]) == [org_a.schema_name]


def test_a_schema_without_a_migrations_table_is_behind(db):
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "org_half_made"')
    assert schemas_behind(["org_half_made"]) == ["org_half_made"]


def test_noop_migrate_schemas_migrates_nothing(org_a, capsys):
    call_command("migrate_schemas", "--noinput", verbosity=1)
    out = capsys.readouterr().out
    assert "0 schema(s) to migrate" in out
    assert f"[outdated-only:{org_a.schema_name}]" not in out


def test_migrate_schemas_repairs_only_the_organisation_that_is_behind(
    committed_organisations, capsys
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    # Undo the tenant apps' last migration (a leaf: nothing depends on what it adds).
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{org_a.schema_name}".tutorials_tutorial DROP COLUMN sources')
        cursor.execute(
            f'DELETE FROM "{org_a.schema_name}".django_migrations '
            "WHERE app = 'tutorials' AND name = '0002_tutorial_sources'"
        )
    assert schemas_behind([org_a.schema_name, org_b.schema_name]) == [org_a.schema_name]

    call_command("migrate_schemas", "--noinput", verbosity=1)

    out = capsys.readouterr().out
    assert "1 schema(s) to migrate" in out
    assert (
        f"[outdated-only:{org_a.schema_name}]   Applying tutorials.0002_tutorial_sources... OK"
        in out
    )
    assert f"[outdated-only:{org_b.schema_name}]" not in out
    assert schemas_behind([org_a.schema_name, org_b.schema_name]) == []


def test_organisation_creation_waits_while_the_template_is_being_migrated(committed_organisations):
    """The migration executor holds the template lock exclusively; a sign-up meanwhile
    blocks until it is released, so it can never clone a half-migrated template."""
    import threading

    from django.db import connections

    from apps.tenants.migration import template_lock_exclusive
    from apps.tenants.schemas import TEMPLATE_LOCK_KEY
    from tests.conftest import make_organisation
    from tests.support.servers import wait_for

    def sign_up_waits_on_the_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = %s",
                [TEMPLATE_LOCK_KEY],
            )
            return bool(cursor.fetchone()[0])

    order: list[str] = []
    created: list[object] = []

    def sign_up() -> None:
        try:
            order.append("sign-up started")
            created.append(make_organisation("Waiting Org"))
            order.append("sign-up finished")
        finally:
            connections.close_all()

    with template_lock_exclusive():
        thread = threading.Thread(target=sign_up)
        thread.start()
        wait_for(sign_up_waits_on_the_lock, "the sign-up to wait on the template lock")
        assert thread.is_alive()
        order.append("migration finished")
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert order == ["sign-up started", "migration finished", "sign-up finished"]
    from apps.tenants.services import organisation_delete

    organisation_delete(organisation=created[0])  # type: ignore[arg-type]
