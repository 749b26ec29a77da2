from django.conf import settings

from apps.accounts.models import Role
from tests.conftest import PASSWORD


def test_public_site_answers_on_the_base_domain(site_client, db):
    response = site_client(None).get("/")
    assert response.status_code == 200
    assert b"Go to your organisation" in response.content


def test_organisation_site_has_its_own_login_page(site_client, org_a):
    response = site_client(org_a).get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in to Org A" in response.content


def test_unknown_organisation_address_is_404_not_the_public_site(site_client, db):
    response = site_client().get("/", HTTP_HOST=f"nobody-here.{settings.BASE_DOMAIN}")
    assert response.status_code == 404
    assert b"No organisation at this address" in response.content


def test_host_with_port_and_capitals_resolves(site_client, org_a):
    client = site_client()
    response = client.get(
        "/accounts/login/", HTTP_HOST=f"{org_a.slug.upper()}.{settings.BASE_DOMAIN}:8000"
    )
    assert b"Log in to Org A" in response.content


def test_landing_form_sends_a_visitor_to_their_organisation(site_client, org_a):
    response = site_client(None).get("/", {"organisation": org_a.slug})
    assert response.status_code == 302
    assert response["Location"].startswith(f"http://{org_a.slug}.{settings.BASE_DOMAIN}")


def test_landing_form_names_what_is_wrong(site_client, db):
    bad = site_client(None).get("/", {"organisation": "x"})
    assert bad.status_code == 422
    assert "3 to 40 characters" in bad.content.decode()
    missing = site_client(None).get("/", {"organisation": "nobody-here"})
    assert missing.status_code == 404
    assert "No organisation uses the address" in missing.content.decode()


def test_workspace_home_is_for_members_only(site_client, org_a, org_b, member_factory):
    anonymous = site_client(org_a).get("/")
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]

    outsider = member_factory(org_b, Role.OWNER)
    assert site_client(org_a, outsider).get("/").status_code == 404

    learner = member_factory(org_a, Role.LEARNER)
    response = site_client(org_a, learner).get("/")
    assert response.status_code == 200
    assert b"Learner" in response.content


def test_login_on_an_organisation_site(site_client, org_a, org_b, member_factory):
    member = member_factory(org_a, Role.INSTRUCTOR)
    client = site_client(org_a)
    response = client.post("/accounts/login/", {"login": member.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200

    wrong = site_client(org_a).post("/accounts/login/", {"login": member.email, "password": "nope"})
    assert wrong.status_code == 200
    assert "are not correct" in wrong.content.decode().replace("\n", " ")

    outsider = member_factory(org_b)
    refused = site_client(org_a).post(
        "/accounts/login/", {"login": outsider.email, "password": PASSWORD}
    )
    assert refused.status_code == 200
    assert "not a member of Org A" in refused.content.decode()


def test_a_trailing_dot_names_the_same_organisation(site_client, org_a):
    response = site_client().get(
        "/accounts/login/", HTTP_HOST=f"{org_a.slug}.{settings.BASE_DOMAIN}."
    )
    assert b"Log in to Org A" in response.content
