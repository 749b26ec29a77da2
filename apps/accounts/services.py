from django.db import transaction

from apps.accounts.models import Membership, Role, User
from apps.tenants.errors import ValidationFailed
from apps.tenants.models import Organisation


def user_create(*, email: str, password: str, display_name: str = "") -> User:
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise ValidationFailed("Enter a valid email address.", extra={"field": "email"})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed(
            "An account with this email already exists.", extra={"field": "email"}
        )
    return User.objects.create_user(
        username=email, email=email, password=password, display_name=display_name
    )


@transaction.atomic
def membership_set(*, user: User, organisation: Organisation, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(
            f"Unknown role “{role}”; choose one of {', '.join(Role.values)}.",
            extra={"field": "role"},
        )
    membership, _ = Membership.objects.update_or_create(
        user=user, organisation=organisation, defaults={"role": role}
    )
    return membership
