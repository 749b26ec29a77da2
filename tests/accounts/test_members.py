"""Roles and removal through the real services: the last owner stays, every change is audited."""

import pytest

from apps.accounts.models import AuditEntry, Membership, Role
from apps.accounts.services import (
    NotAllowed,
    membership_remove,
    membership_role_change,
    organisation_settings_update,
)
from apps.tenants.errors import Conflict, ValidationFailed


def member(org, factory, role):
    return Membership.objects.get(user=factory(org, role), organisation=org)


def test_role_change_is_audited_with_before_and_after(org_a, member_factory):
    owner = member(org_a, member_factory, Role.OWNER)
    learner = member(org_a, member_factory, Role.LEARNER)
    membership_role_change(actor=owner, membership=learner, role=Role.INSTRUCTOR)
    entry = AuditEntry.objects.get(organisation=org_a, action="member.role_changed")
    assert entry.actor == owner.user
    assert entry.target == learner.user.email
    assert entry.before == {"role": "learner"}
    assert entry.after == {"role": "instructor"}


def test_last_owner_can_be_neither_demoted_nor_removed(org_a, member_factory):
    owner = member(org_a, member_factory, Role.OWNER)
    with pytest.raises(Conflict, match="last owner"):
        membership_role_change(actor=owner, membership=owner, role=Role.ADMIN)
    with pytest.raises(Conflict, match="last owner"):
        membership_remove(actor=owner, membership=owner)
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER
    second = member(org_a, member_factory, Role.OWNER)
    membership_role_change(actor=second, membership=owner, role=Role.ADMIN)
    assert Membership.objects.get(pk=owner.pk).role == Role.ADMIN


def test_admins_cannot_touch_owners_or_make_owners(org_a, member_factory):
    owner = member(org_a, member_factory, Role.OWNER)
    admin = member(org_a, member_factory, Role.ADMIN)
    learner = member(org_a, member_factory, Role.LEARNER)
    with pytest.raises(NotAllowed):
        membership_role_change(actor=admin, membership=owner, role=Role.LEARNER)
    with pytest.raises(NotAllowed):
        membership_role_change(actor=admin, membership=learner, role=Role.OWNER)
    with pytest.raises(NotAllowed):
        membership_remove(actor=admin, membership=owner)
    membership_remove(actor=admin, membership=learner)
    assert not Membership.objects.filter(pk=learner.pk).exists()
    assert AuditEntry.objects.get(action="member.removed").before == {"role": "learner"}


def test_unknown_role_names_the_field(org_a, member_factory):
    owner = member(org_a, member_factory, Role.OWNER)
    learner = member(org_a, member_factory, Role.LEARNER)
    with pytest.raises(ValidationFailed) as refused:
        membership_role_change(actor=owner, membership=learner, role="emperor")
    assert refused.value.extra == {"field": "role"}


def test_settings_validate_domains_and_record_only_what_changed(org_a, member_factory):
    admin = member(org_a, member_factory, Role.ADMIN)
    with pytest.raises(ValidationFailed) as refused:
        organisation_settings_update(
            actor=admin, organisation=org_a, allowed_email_domains="uni.example, bad domain!"
        )
    assert refused.value.extra == {"field": "allowed_email_domains"}
    org_a.refresh_from_db()
    assert org_a.allowed_email_domains == []
    organisation_settings_update(
        actor=admin, organisation=org_a, name="Renamed", allowed_email_domains="@Uni.Example"
    )
    org_a.refresh_from_db()
    assert org_a.name == "Renamed"
    assert org_a.allowed_email_domains == ["uni.example"]
    entry = AuditEntry.objects.get(action="organisation.settings_changed")
    assert entry.before["name"] == "Org A"
    assert entry.after["name"] == "Renamed"
    with pytest.raises(ValidationFailed):
        organisation_settings_update(actor=admin, organisation=org_a, name="  ")
