from django.core.cache import cache
from django.db import connection
from django_tenants.utils import tenant_context

from apps.scenarios.models import LabSession
from apps.scenarios.services import lab_session_start


def test_a_row_written_in_one_organisation_is_invisible_in_another(org_a, org_b, member_factory):
    learner = member_factory(org_a)
    with tenant_context(org_a):
        session = lab_session_start(
            organisation=org_a, learner=learner, scenario_set="cache-stampede"
        )

    with tenant_context(org_b):
        assert LabSession.objects.count() == 0
        assert not LabSession.objects.filter(pk=session.pk).exists()
    with tenant_context(org_a):
        assert list(LabSession.objects.values_list("scenario_set", flat=True)) == ["cache-stampede"]
    # And on disk, the row sits in A's schema only.
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{org_a.schema_name}".scenarios_labsession')
        assert cursor.fetchone()[0] == 1
        cursor.execute(f'SELECT count(*) FROM "{org_b.schema_name}".scenarios_labsession')
        assert cursor.fetchone()[0] == 0


def test_public_schema_has_no_tenant_tables(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name = 'scenarios_labsession'"
        )
        assert cursor.fetchone()[0] == 0


def test_cache_keys_are_scoped_to_the_organisation(org_a, org_b):
    with tenant_context(org_a):
        cache.set("greeting", "hello from A", 30)
    try:
        with tenant_context(org_b):
            assert cache.get("greeting") is None
        with tenant_context(org_a):
            assert cache.get("greeting") == "hello from A"
    finally:
        with tenant_context(org_a):
            cache.delete("greeting")
