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
