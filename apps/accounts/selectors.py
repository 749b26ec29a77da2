from datetime import datetime

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import AuditEntry, Invitation, InvitationKind, Membership, User
from apps.tenants.models import Organisation


def membership_get(*, user: User, organisation: Organisation) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organisation=organisation).first()


def organisations_of(*, user: User) -> list[Organisation]:
    return [
        m.organisation for m in Membership.objects.filter(user=user).select_related("organisation")
    ]


def seats_used(*, organisation: Organisation) -> int:
    """Members plus pending email invitations: what the plan's seats are spent on."""
    members = Membership.objects.filter(organisation=organisation).count()
    pending = Invitation.objects.filter(
        organisation=organisation,
        kind=InvitationKind.EMAIL,
        revoked_at__isnull=True,
        uses=0,
        expires_at__gt=timezone.now(),
    ).count()
    return members + pending


def members_list(
    *, organisation: Organisation, search: str = "", role: str = ""
) -> QuerySet[Membership]:
    members = Membership.objects.filter(organisation=organisation).select_related("user")
    if search:
        members = members.filter(
            Q(user__email__icontains=search) | Q(user__display_name__icontains=search)
        )
    if role:
        members = members.filter(role=role)
    return members.order_by("user__email")


def invitations_list(*, organisation: Organisation, state: str = "pending") -> list[Invitation]:
    now = timezone.now()
    invitations = Invitation.objects.filter(organisation=organisation).select_related("created_by")
    if state == "pending":
        invitations = invitations.filter(revoked_at__isnull=True, expires_at__gt=now).filter(
            uses__lt=F("max_uses")
        )
    return list(invitations.order_by("-created_at"))


def audit_entries(
    *,
    organisation: Organisation,
    action: str = "",
    actor: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(organisation=organisation)
    if action:
        entries = entries.filter(action__startswith=action)
    if actor:
        entries = entries.filter(actor_email__icontains=actor)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return entries.order_by("-created_at", "-id")


def audit_actions(*, organisation: Organisation) -> list[str]:
    return list(
        AuditEntry.objects.filter(organisation=organisation)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
