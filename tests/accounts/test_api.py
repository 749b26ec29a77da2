"""The admin API over real HTTP handling: session and token auth, one error envelope."""

import pytest
from django.core import mail
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import AuditEntry, Invitation, Membership, Role
from apps.tenants.models import Plan
from tests.conftest import host_of
from tests.support.openapi import assert_conforms


def checked_call(method):
    return lambda *args, **kwargs: checked(method(*args, **kwargs))


def checked(response):
    """Every real answer of the admin API must match the committed OpenAPI schema."""
    assert_conforms(response, site="tenant")
    return response


@pytest.fixture
def api(org_a, member_factory):
    """An API client on Org A's site, authenticated by token as an owner."""
    owner = member_factory(org_a, Role.OWNER)
    client = APIClient(HTTP_HOST=host_of(org_a))
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    client.owner = owner  # type: ignore[attr-defined]
    return client


def test_members_search_filter_and_paginate(api, org_a, member_factory):
    for _ in range(3):
        member_factory(org_a, Role.LEARNER)
    instructor = member_factory(org_a, Role.INSTRUCTOR)
    everyone = checked_call(api.get)("/api/v1/members/").json()
    assert everyone["count"] == 5
    assert len(everyone["results"]) == 5
    assert checked(api.get("/api/v1/members/?role=learner")).json()["count"] == 3
    found = checked_call(api.get)("/api/v1/members/", {"q": instructor.email[:12]}).json()[
        "results"
    ]
    assert [m["email"] for m in found] == [instructor.email]
    bad = checked_call(api.get)("/api/v1/members/?role=emperor")
    assert bad.status_code == 422
    assert "role" in bad.json()["extra"]["fields"]


def test_role_change_and_last_owner_protection(api, org_a, member_factory):
    learner = member_factory(org_a, Role.LEARNER)
    pk = Membership.objects.get(user=learner).pk
    changed = checked_call(api.patch)(
        f"/api/v1/members/{pk}/", {"role": "instructor"}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "instructor"
    own = Membership.objects.get(user=api.owner).pk
    refused = checked_call(api.delete)(f"/api/v1/members/{own}/")
    assert refused.status_code == 409
    assert "last owner" in refused.json()["message"]
    assert Membership.objects.filter(pk=own).exists()
    bad = checked_call(api.patch)(f"/api/v1/members/{pk}/", {"role": "emperor"}, format="json")
    assert bad.status_code == 422
    assert "role" in bad.json()["extra"]["fields"]


def test_invite_by_email_then_revoke_and_resend(api, org_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = checked_call(api.post)(
            "/api/v1/invitations/", {"email": "ada@example.test"}, format="json"
        )
    assert created.status_code == 201
    assert created.json()["state"] == "pending"
    pk = created.json()["id"]
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        resent = checked_call(api.post)(f"/api/v1/invitations/{pk}/resend/")
    assert resent.status_code == 200
    assert len(mail.outbox) == 2
    assert checked(api.delete(f"/api/v1/invitations/{pk}/")).status_code == 204
    assert Invitation.objects.get(pk=pk).revoked_at is not None
    gone = checked_call(api.post)(f"/api/v1/invitations/{pk}/resend/")
    assert gone.status_code == 409
    assert "revoked" in gone.json()["message"]
    listed = checked_call(api.get)("/api/v1/invitations/?state=all").json()["results"]
    assert [i["state"] for i in listed] == ["revoked"]


def test_bad_invitations_name_what_is_wrong(api, org_a):
    bad = checked_call(api.post)("/api/v1/invitations/", {"email": "nobody"}, format="json")
    assert bad.status_code == 422
    assert bad.json() == {
        "message": "“nobody” is not a valid email address.",
        "extra": {"field": "email"},
    }
    org_a.plan = Plan.objects.create(slug="one", name="One", seats=1, sandbox_quota=1)
    org_a.save(update_fields=["plan"])
    full = checked_call(api.post)(
        "/api/v1/invitations/", {"email": "ada@example.test"}, format="json"
    )
    assert full.status_code == 409
    assert full.json()["extra"]["field"] == "seats"
    assert not Invitation.objects.exists()


def test_bulk_invitations_report_per_row(api):
    answer = checked_call(api.post)(
        "/api/v1/invitations/bulk/",
        {"csv": "a@example.test\nbroken\nb@example.test,instructor"},
        format="json",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["invited"], body["refused"]) == (2, 1)
    assert body["rows"][1]["row"] == 2
    assert not body["rows"][1]["ok"]


def test_invitation_link_is_returned_once(api, org_a):
    answer = checked_call(api.post)("/api/v1/invitations/links/", {"max_uses": 5}, format="json")
    assert answer.status_code == 201
    url = answer.json()["url"]
    assert f"{org_a.slug}." in url
    assert "/join/" in url
    listed = checked_call(api.get)("/api/v1/invitations/").json()["results"]
    assert "url" not in listed[0]
    bad = checked_call(api.post)("/api/v1/invitations/links/", {"max_uses": 0}, format="json")
    assert bad.status_code == 422
    assert bad.json()["extra"]["field"] == "max_uses"


def test_organisation_settings_and_audit_log(api, org_a):
    shown = checked_call(api.get)("/api/v1/organisation/").json()
    assert shown["slug"] == org_a.slug
    assert shown["seats_used"] == 1
    bad = checked_call(api.patch)(
        "/api/v1/organisation/", {"allowed_email_domains": ["no spaces"]}, format="json"
    )
    assert bad.status_code == 422
    assert bad.json()["extra"]["field"] == "allowed_email_domains"
    ok = checked_call(api.patch)("/api/v1/organisation/", {"name": "Acme Labs"}, format="json")
    assert ok.status_code == 200
    assert ok.json()["name"] == "Acme Labs"
    log = checked_call(api.get)("/api/v1/audit-log/?action=organisation").json()["results"]
    assert [e["action"] for e in log] == ["organisation.settings_changed"]
    assert log[0]["before"] == {"name": "Org A"}
    assert log[0]["actor"] == api.owner.email
    assert AuditEntry.objects.filter(organisation=org_a).count() == 1
    bad_date = checked_call(api.get)("/api/v1/audit-log/?since=yesterday")
    assert bad_date.status_code == 422
    assert "since" in bad_date.json()["extra"]["fields"]


def test_session_api_calls_need_the_csrf_token(org_a, member_factory):
    client = APIClient(HTTP_HOST=host_of(org_a), enforce_csrf_checks=True)
    client.force_login(member_factory(org_a, Role.ADMIN))
    assert client.get("/api/v1/members/").status_code == 200
    refused = client.post("/api/v1/invitations/", {"email": "x@example.test"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
