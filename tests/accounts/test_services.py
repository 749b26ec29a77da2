import pytest

from apps.accounts.models import Membership, Role
from apps.accounts.services import membership_set, user_create
from apps.tenants.errors import ValidationFailed
from tests.conftest import PASSWORD


@pytest.mark.parametrize("email", ["", "   ", "not-an-email"])
def test_user_needs_a_valid_email(db, email):
    with pytest.raises(ValidationFailed) as caught:
        user_create(email=email, password=PASSWORD)
    assert caught.value.extra == {"field": "email"}


def test_email_is_unique_whatever_its_case(db):
    user_create(email="Ada@Example.test", password=PASSWORD)
    with pytest.raises(ValidationFailed) as caught:
        user_create(email="ada@example.TEST", password=PASSWORD)
    assert "already exists" in caught.value.message


def test_unknown_role_is_refused_and_the_membership_is_unchanged(org_a, member_factory):
    user = member_factory(org_a, Role.INSTRUCTOR)
    with pytest.raises(ValidationFailed) as caught:
        membership_set(user=user, organisation=org_a, role="emperor")
    assert "Unknown role “emperor”" in caught.value.message
    assert Membership.objects.get(user=user, organisation=org_a).role == Role.INSTRUCTOR


def test_roles_rank_owner_over_admin_over_instructor_over_learner(org_a, member_factory):
    owner = Membership.objects.get(user=member_factory(org_a, Role.OWNER))
    learner = Membership.objects.get(user=member_factory(org_a, Role.LEARNER))
    assert owner.has_role(Role.ADMIN)
    assert owner.has_role(Role.LEARNER)
    assert learner.has_role(Role.LEARNER)
    assert not learner.has_role(Role.INSTRUCTOR)
