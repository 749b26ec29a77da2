from apps.accounts.models import Membership, User
from apps.tenants.models import Organisation


def membership_get(*, user: User, organisation: Organisation) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organisation=organisation).first()


def organisations_of(*, user: User) -> list[Organisation]:
    return [
        m.organisation for m in Membership.objects.filter(user=user).select_related("organisation")
    ]
