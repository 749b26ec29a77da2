"""Platform staff manage organisations in the Django admin on the public site."""

import pytest
from django.conf import settings
from django_tenants.utils import schema_exists

from apps.accounts.services import user_create
from apps.tenants.models import Domain, Organisation
from tests.conftest import PASSWORD


@pytest.fixture
def staff_client(site_client, db):
    staff = user_create(email="staff@example.test", password=PASSWORD, email_verified=True)
    staff.is_staff = staff.is_superuser = True
    staff.save()
    return site_client(None, staff)


def test_admin_pages_render_on_the_public_site(staff_client, org_a):
    assert staff_client.get("/admin/").status_code == 200
    listing = staff_client.get("/admin/tenants/organisation/")
    assert listing.status_code == 200
    assert org_a.name in listing.content.decode()
    assert staff_client.get(f"/admin/tenants/organisation/{org_a.pk}/change/").status_code == 200


def test_adding_an_organisation_in_the_admin_goes_through_the_service(staff_client):
    response = staff_client.post(
        "/admin/tenants/organisation/add/", {"name": "Admin Made", "slug": "admin-made", "plan": ""}
    )
    assert response.status_code == 302
    organisation = Organisation.objects.get(slug="admin-made")
    assert organisation.schema_name == "org_admin_made"
    assert schema_exists("org_admin_made")
    assert Domain.objects.get(tenant=organisation).domain == f"admin-made.{settings.BASE_DOMAIN}"


def test_a_bad_address_in_the_admin_is_a_form_error_and_nothing_is_made(staff_client, org_a):
    reserved = staff_client.post("/admin/tenants/organisation/add/", {"name": "X", "slug": "www"})
    assert reserved.status_code == 200
    assert "reserved" in reserved.content.decode()
    taken = staff_client.post("/admin/tenants/organisation/add/", {"name": "X", "slug": org_a.slug})
    assert "already taken" in taken.content.decode()
    assert Organisation.objects.count() == 1


def test_the_admin_is_not_for_organisation_members(site_client, org_a, member_factory):
    owner = member_factory(org_a, "owner")
    response = site_client(None, owner).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
