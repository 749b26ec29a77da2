import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from apps.scenarios.models import LabSession
from apps.scenarios.services import lab_session_start
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Domain, Organisation
from apps.tenants.services import organisation_create


def test_creates_schema_domain_and_migrated_tables(db):
    organisation = organisation_create(name="Acme Corp", slug="acme-corp")

    assert organisation.schema_name == "org_acme_corp"
    assert schema_exists("org_acme_corp")
    domain = Domain.objects.get(tenant=organisation)
    assert domain.domain == f"acme-corp.{settings.BASE_DOMAIN}"
    assert domain.is_primary
    with tenant_context(organisation):
        # The clone carries the template's tables and its migration history.
        assert LabSession.objects.count() == 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'scenarios'")
            assert cursor.fetchone()[0] >= 1


@pytest.mark.parametrize(
    ("slug", "fragment"),
    [
        ("", "Enter an address"),
        ("ab", "3 to 40 characters"),
        ("a" * 41, "3 to 40 characters"),
        ("Has Space", "lowercase letters"),
        ("1starts-with-digit", "start with a letter"),
        ("ends-with-", "must not end with a hyphen"),
        ("double--hyphen", "single hyphens"),
        ("under_score", "lowercase letters"),
        ("www", "reserved"),
        ("admin", "reserved"),
        ("tenant-x", "reserved"),
    ],
)
def test_bad_slug_is_refused_with_a_clear_message(db, slug, fragment):
    with pytest.raises(ValidationFailed) as caught:
        organisation_create(name="Whatever", slug=slug)

    assert fragment in caught.value.message
    assert caught.value.extra["field"] == "slug"
    assert not Organisation.objects.exists()


def test_missing_name_is_refused(db):
    with pytest.raises(ValidationFailed) as caught:
        organisation_create(name="  ", slug="no-name")
    assert caught.value.extra == {"field": "name"}
    assert not schema_exists("org_no_name")


def test_duplicate_slug_is_refused_and_the_first_organisation_is_untouched(db, member_factory):
    first = organisation_create(name="First", slug="taken")
    learner = member_factory(first)
    with tenant_context(first):
        lab_session_start(organisation=first, learner=learner, scenario_set="retry-storm")

    with pytest.raises(Conflict) as caught:
        organisation_create(name="Second", slug="taken")

    assert "already taken" in caught.value.message
    assert caught.value.extra["field"] == "slug"
    assert Organisation.objects.get(slug="taken").name == "First"
    with tenant_context(first):
        assert LabSession.objects.count() == 1


def test_slug_is_normalised_to_lowercase(db):
    organisation = organisation_create(name="Shouty", slug="  SHOUTY ")
    assert organisation.slug == "shouty"
