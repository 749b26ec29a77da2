"""Writes about people: accounts, memberships and roles, organisation settings.

Invitations have their own module (`invitations.py`); every admin action here writes an
audit entry in the same transaction as the change it records.
"""

from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet

from apps.accounts.models import ROLE_RANK, AuditEntry, Membership, Role, User
from apps.tenants.errors import ApplicationError, Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tenants.services import organisation_create


class NotAllowed(ApplicationError):
    """The actor is a member but their role does not allow this action."""

    status_code = 403


def user_create(
    *, email: str, password: str, display_name: str = "", email_verified: bool = False
) -> User:
    """An account; `email_verified` when the address was proven another way (a demo
    account, or an invitation that reached that mailbox)."""
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise ValidationFailed("Enter a valid email address.", extra={"field": "email"})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed(
            "An account with this email already exists.", extra={"field": "email"}
        )
    try:
        validate_password(password, user=User(email=email, display_name=display_name))
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), extra={"field": "password"}) from None
    user = User.objects.create_user(
        username=email, email=email, password=password, display_name=display_name
    )
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=email_verified)
    return user


def audit_record(
    *,
    organisation: Organisation,
    actor: User | None,
    action: str,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        organisation=organisation,
        actor=actor,
        actor_email=actor.email if actor else "",
        action=action,
        target=target,
        before=before or {},
        after=after or {},
    )


def _role_checked(role: str) -> Role:
    if role not in Role.values:
        raise ValidationFailed(
            f"Unknown role “{role}”; choose one of {', '.join(Role.values)}.",
            extra={"field": "role"},
        )
    return Role(role)


@transaction.atomic
def membership_set(*, user: User, organisation: Organisation, role: str) -> Membership:
    """Makes `user` a member with `role` (platform use: demo data, organisation sign-up)."""
    membership, _ = Membership.objects.update_or_create(
        user=user, organisation=organisation, defaults={"role": _role_checked(role)}
    )
    return membership


def _owners(organisation: Organisation) -> QuerySet[Membership]:
    return Membership.objects.select_for_update().filter(organisation=organisation, role=Role.OWNER)


def _may_manage(actor: Membership, target_role: str) -> bool:
    """An admin manages everyone below owner; an owner manages everyone."""
    if not actor.has_role(Role.ADMIN):
        return False
    return actor.role == Role.OWNER or ROLE_RANK[Role(target_role)] < ROLE_RANK[Role.OWNER]


@transaction.atomic
def membership_role_change(*, actor: Membership, membership: Membership, role: str) -> Membership:
    new_role = _role_checked(role)
    # Lock the organisation's owners first: two admins demoting the last two owners at
    # once must not both succeed.
    owner_ids = list(_owners(membership.organisation).values_list("id", flat=True))
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if not _may_manage(actor, membership.role) or not _may_manage(actor, new_role):
        raise NotAllowed("Only an owner can make someone an owner or change an owner's role.")
    if membership.role == new_role:
        return membership
    if membership.role == Role.OWNER and owner_ids == [membership.id]:
        raise Conflict(
            "This is the organisation's last owner: make someone else an owner first.",
            extra={"field": "role"},
        )
    before = membership.role
    membership.role = new_role
    membership.save(update_fields=["role"])
    audit_record(
        organisation=membership.organisation,
        actor=actor.user,
        action="member.role_changed",
        target=membership.user.email,
        before={"role": before},
        after={"role": new_role.value},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Membership, membership: Membership) -> None:
    owner_ids = list(_owners(membership.organisation).values_list("id", flat=True))
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if not _may_manage(actor, membership.role):
        raise NotAllowed("Only an owner can remove an owner.")
    if membership.role == Role.OWNER and owner_ids == [membership.id]:
        raise Conflict(
            "This is the organisation's last owner and cannot be removed.",
            extra={"field": "member"},
        )
    audit_record(
        organisation=membership.organisation,
        actor=actor.user,
        action="member.removed",
        target=membership.user.email,
        before={"role": membership.role},
    )
    membership.delete()


def _domains_clean(domains: list[str] | str) -> list[str]:
    if isinstance(domains, str):
        domains = domains.replace(",", " ").split()
    cleaned = []
    for raw in domains:
        domain = str(raw).strip().lower().lstrip("@")
        if not domain:
            continue
        labels = domain.split(".")
        if len(labels) < 2 or not all(
            label and label.replace("-", "").isalnum() and not label.startswith("-")
            for label in labels
        ):
            raise ValidationFailed(
                f"“{raw}” is not an email domain (example: university.edu).",
                extra={"field": "allowed_email_domains"},
            )
        if domain not in cleaned:
            cleaned.append(domain)
    return cleaned


@transaction.atomic
def organisation_settings_update(
    *,
    actor: Membership,
    organisation: Organisation,
    name: str | None = None,
    allowed_email_domains: list[str] | str | None = None,
) -> Organisation:
    if not actor.has_role(Role.ADMIN):
        raise NotAllowed("Only an admin can change the organisation's settings.")
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    before = {
        "name": organisation.name,
        "allowed_email_domains": organisation.allowed_email_domains,
    }
    if name is not None:
        name = name.strip()
        if not name or len(name) > 120:
            raise ValidationFailed(
                "Give the organisation a name of 1 to 120 characters.", extra={"field": "name"}
            )
        organisation.name = name
    if allowed_email_domains is not None:
        organisation.allowed_email_domains = _domains_clean(allowed_email_domains)
    after = {"name": organisation.name, "allowed_email_domains": organisation.allowed_email_domains}
    if after != before:
        organisation.save(update_fields=["name", "allowed_email_domains"])
        audit_record(
            organisation=organisation,
            actor=actor.user,
            action="organisation.settings_changed",
            target=organisation.slug,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return organisation


def organisation_signup(*, user: User, name: str, slug: str) -> Organisation:
    """A signed-up person creates an organisation and becomes its owner."""
    if not EmailAddress.objects.filter(user=user, verified=True).exists():
        raise NotAllowed("Verify your email address before creating an organisation.")
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed(
            "Give the organisation a name of 1 to 120 characters.", extra={"field": "name"}
        )
    organisation = organisation_create(slug=slug, name=name)
    with transaction.atomic():
        membership_set(user=user, organisation=organisation, role=Role.OWNER)
        audit_record(
            organisation=organisation,
            actor=user,
            action="organisation.created",
            target=organisation.slug,
            after={"name": organisation.name, "owner": user.email},
        )
    return organisation
