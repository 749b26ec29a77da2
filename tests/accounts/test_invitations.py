"""Invitations through the real services: tokens, seats, CSV lists, accept, resend, revoke."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone

from apps.accounts.invitations import (
    invitation_accept,
    invitation_accept_new_user,
    invitation_create,
    invitation_link_create,
    invitation_resend,
    invitation_revoke,
    invitations_create_bulk,
    token_hash,
)
from apps.accounts.models import AuditEntry, Invitation, Membership, Role
from apps.accounts.selectors import seats_used
from apps.accounts.services import NotAllowed, user_create
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Plan
from tests.conftest import PASSWORD


@pytest.fixture
def admin(org_a, member_factory):
    return Membership.objects.get(user=member_factory(org_a, Role.ADMIN), organisation=org_a)


def token_in(message) -> str:
    return message.body.split("/join/")[1].split("/")[0]


@pytest.mark.django_db(transaction=True)
def test_email_invitation_is_sent_after_commit_and_keeps_only_a_hash(admin, org_a):
    invited = invitation_create(actor=admin, email="New.Person@Example.test", role=Role.LEARNER)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.test"]
    token = token_in(message)
    assert token == invited.token
    assert len(token) >= 40
    stored = Invitation.objects.get(pk=invited.invitation.pk)
    assert stored.token_hash == token_hash(token)
    assert token not in stored.token_hash
    assert f"{org_a.slug}." in message.body


def test_new_user_accepts_once_and_lands_with_the_role(admin, org_a):
    invited = invitation_create(actor=admin, email="ada@example.test", role=Role.INSTRUCTOR)
    membership = invitation_accept_new_user(token=invited.token, password=PASSWORD)
    assert membership.organisation == org_a
    assert membership.role == Role.INSTRUCTOR
    assert EmailAddress.objects.get(user=membership.user).verified  # the invitation proved it
    with pytest.raises(ValidationFailed, match="already been used"):
        invitation_accept_new_user(token=invited.token, password=PASSWORD)
    actions = list(AuditEntry.objects.filter(organisation=org_a).values_list("action", flat=True))
    assert "invitation.accepted" in actions
    assert "invitation.created" in actions


def test_email_invitation_is_for_that_address_only(admin, org_a):
    invited = invitation_create(actor=admin, email="ada@example.test")
    other = user_create(email="bob@example.test", password=PASSWORD, email_verified=True)
    with pytest.raises(ValidationFailed, match=r"is for ada@example\.test"):
        invitation_accept(user=other, token=invited.token)
    assert not Membership.objects.filter(user=other).exists()
    assert Invitation.objects.get(pk=invited.invitation.pk).uses == 0


def test_expired_revoked_and_unknown_tokens_are_refused_with_their_reason(admin, org_a):
    user = user_create(email="ada@example.test", password=PASSWORD, email_verified=True)
    expired = invitation_create(actor=admin, email="ada@example.test")
    Invitation.objects.filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(ValidationFailed, match="expired"):
        invitation_accept(user=user, token=expired.token)
    link = invitation_link_create(actor=admin)
    invitation_revoke(actor=admin, invitation=link.invitation)
    with pytest.raises(ValidationFailed, match="revoked"):
        invitation_accept(user=user, token=link.token)
    with pytest.raises(ValidationFailed, match="not valid"):
        invitation_accept(user=user, token="made-up-token")
    assert not Membership.objects.filter(user=user, organisation=org_a).exists()


def test_resend_replaces_the_token(admin):
    first = invitation_create(actor=admin, email="ada@example.test")
    second = invitation_resend(actor=admin, invitation=first.invitation)
    assert second.token != first.token
    with pytest.raises(ValidationFailed, match="not valid"):
        invitation_accept_new_user(token=first.token, password=PASSWORD)
    assert invitation_accept_new_user(token=second.token, password=PASSWORD).role == Role.LEARNER


def test_a_second_invitation_to_the_same_address_asks_for_a_resend(admin):
    invitation_create(actor=admin, email="ada@example.test")
    with pytest.raises(Conflict, match="resend"):
        invitation_create(actor=admin, email="ADA@example.test")


def test_inviting_past_the_seat_limit_is_refused_and_says_so(admin, org_a, member_factory):
    plan = Plan.objects.create(slug="tiny", name="Tiny", seats=3, sandbox_quota=1)
    org_a.plan = plan
    org_a.save(update_fields=["plan"])
    admin.organisation.refresh_from_db()
    invitation_create(actor=admin, email="one@example.test")
    invitation_create(actor=admin, email="two@example.test")  # 1 member + 2 pending = 3
    with pytest.raises(Conflict, match="All 3 seats") as refused:
        invitation_create(actor=admin, email="three@example.test")
    assert refused.value.extra == {"field": "seats", "seats": 3, "used": 3}
    assert seats_used(organisation=org_a) == 3
    assert not Invitation.objects.filter(email="three@example.test").exists()


def test_link_respects_uses_domain_and_seats(admin, org_a):
    link = invitation_link_create(
        actor=admin, role=Role.LEARNER, max_uses=2, allowed_domain="uni.example"
    )
    outsider = user_create(email="x@elsewhere.example", password=PASSWORD, email_verified=True)
    with pytest.raises(ValidationFailed, match=r"uni\.example only"):
        invitation_accept(user=outsider, token=link.token)
    first = user_create(email="a@uni.example", password=PASSWORD, email_verified=True)
    second = user_create(email="b@uni.example", password=PASSWORD, email_verified=True)
    third = user_create(email="c@uni.example", password=PASSWORD, email_verified=True)
    assert invitation_accept(user=first, token=link.token).role == Role.LEARNER
    # accepting again changes nothing and uses nothing
    invitation_accept(user=first, token=link.token)
    invitation_accept(user=second, token=link.token)
    with pytest.raises(ValidationFailed, match="already been used"):
        invitation_accept(user=third, token=link.token)
    assert Invitation.objects.get(pk=link.invitation.pk).uses == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": Role.ADMIN}, "role"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 365}, "expires_in_days"),
        ({"max_uses": 0}, "max_uses"),
        ({"allowed_domain": "not a domain"}, "allowed_domain"),
    ],
)
def test_bad_link_settings_name_the_field(admin, kwargs, field):
    with pytest.raises(ValidationFailed) as refused:
        invitation_link_create(actor=admin, **kwargs)
    assert refused.value.extra["field"] == field
    assert not Invitation.objects.exists()


def test_csv_list_reports_each_bad_row_and_invites_the_rest(admin, org_a, member_factory):
    existing = member_factory(org_a, Role.LEARNER)
    text = (
        "email,role\n"
        "good@example.test\n"
        "not-an-email\n"
        f"{existing.email}\n"
        "boss@example.test,emperor\n"
        "teacher@example.test,instructor\n"
        "good@example.test\n"
    )
    report = invitations_create_bulk(actor=admin, text=text)
    outcome = {(r.row, r.email): (r.ok, r.message) for r in report.rows}
    assert report.invited == 2
    assert report.refused == 4
    assert outcome[(2, "good@example.test")] == (True, "invited")
    assert "not a valid email" in outcome[(3, "not-an-email")][1]
    assert "already a member" in outcome[(4, existing.email)][1]
    assert "Unknown role" in outcome[(5, "boss@example.test")][1]
    assert outcome[(6, "teacher@example.test")][0]
    assert "resend" in outcome[(7, "good@example.test")][1]
    assert Invitation.objects.get(email="teacher@example.test").role == Role.INSTRUCTOR


@pytest.mark.parametrize("text", ["", "\n\n", "email\n", "a@b.test\0"])
def test_csv_without_addresses_or_binary_is_refused(admin, text):
    with pytest.raises(ValidationFailed) as refused:
        invitations_create_bulk(actor=admin, text=text)
    assert refused.value.extra["field"] == "csv"


def test_organisation_domains_restrict_invitations(admin, org_a):
    org_a.allowed_email_domains = ["uni.example"]
    org_a.save(update_fields=["allowed_email_domains"])
    admin.organisation.refresh_from_db()
    with pytest.raises(ValidationFailed, match=r"only admits addresses at uni\.example"):
        invitation_create(actor=admin, email="ada@gmail.example")
    assert invitation_create(actor=admin, email="ada@uni.example").invitation.pk


def test_only_admins_invite_and_only_owners_invite_owners(org_a, member_factory):
    instructor = Membership.objects.get(
        user=member_factory(org_a, Role.INSTRUCTOR), organisation=org_a
    )
    admin = Membership.objects.get(user=member_factory(org_a, Role.ADMIN), organisation=org_a)
    owner = Membership.objects.get(user=member_factory(org_a, Role.OWNER), organisation=org_a)
    with pytest.raises(NotAllowed):
        invitation_create(actor=instructor, email="x@example.test")
    with pytest.raises(NotAllowed):
        invitation_create(actor=admin, email="x@example.test", role=Role.OWNER)
    assert invitation_create(actor=owner, email="x@example.test", role=Role.OWNER).invitation


def test_weak_password_on_accept_is_refused_and_the_invitation_stays(admin):
    invited = invitation_create(actor=admin, email="ada@example.test")
    with pytest.raises(ValidationFailed) as refused:
        invitation_accept_new_user(token=invited.token, password="123")
    assert refused.value.extra["field"] == "password"
    assert Invitation.objects.get(pk=invited.invitation.pk).uses == 0
    assert invitation_accept_new_user(token=invited.token, password=PASSWORD)
