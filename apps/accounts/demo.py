"""The demo organisation that `make dev` sets up: idempotent, safe to run on every start."""

from dataclasses import dataclass

from django.db import transaction

from apps.accounts.models import Membership, Role, User
from apps.accounts.services import membership_set, user_create
from apps.tenants.models import Organisation
from apps.tenants.services import organisation_create

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Organisation"
DEMO_USERS = (
    ("owner@demo.test", "Olive Owner", Role.OWNER),
    ("instructor@demo.test", "Ivan Instructor", Role.INSTRUCTOR),
    ("learner@demo.test", "Lena Learner", Role.LEARNER),
)
STAFF_EMAIL = "staff@demo.test"


@dataclass
class DemoSetup:
    organisation: Organisation
    created: list[str]


def user_ensure(
    *, email: str, password: str, display_name: str, staff: bool = False
) -> tuple[User, bool]:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    user = user_create(
        email=email, password=password, display_name=display_name, email_verified=True
    )
    if staff:
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user, True


@transaction.atomic
def demo_setup(*, password: str) -> DemoSetup:
    created: list[str] = []
    organisation = Organisation.objects.filter(slug=DEMO_SLUG).first()
    if organisation is None:
        organisation = organisation_create(name=DEMO_NAME, slug=DEMO_SLUG)
        created.append(f"organisation {DEMO_SLUG}")
    for email, display_name, role in DEMO_USERS:
        user, new = user_ensure(email=email, password=password, display_name=display_name)
        if new:
            created.append(f"user {email}")
        if not Membership.objects.filter(user=user, organisation=organisation).exists():
            membership_set(user=user, organisation=organisation, role=role)
            created.append(f"membership {email} as {role}")
    _, new = user_ensure(
        email=STAFF_EMAIL, password=password, display_name="Platform Staff", staff=True
    )
    if new:
        created.append(f"staff user {STAFF_EMAIL}")
    return DemoSetup(organisation=organisation, created=created)
