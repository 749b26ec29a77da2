"""Writes about invitations: by email (one, or a CSV list), by link; resend, revoke, accept.

A token is 32 random bytes, shown once (in the email or the link) and kept only as its
SHA-256. An email invitation is single-use; a link has an expiry, a use limit and an
optional email domain. Seats are counted as members plus pending email invitations, under
a lock on the organisation, so two admins inviting at once cannot pass the plan's seats.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Invitation, InvitationKind, Membership, Role, User
from apps.accounts.selectors import seats_used
from apps.accounts.services import NotAllowed, _role_checked, audit_record, user_create
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tenants.services import organisation_domain_for

EMAIL_INVITATION_DAYS = 14
LINK_MAX_DAYS = 90
LINK_MAX_USES = 1000
BULK_MAX_ROWS = 500


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def invitation_url(*, organisation: Organisation, token: str) -> str:
    scheme = "https" if settings.SESSION_COOKIE_SECURE else "http"
    port = settings.PUBLIC_PORT
    host = organisation_domain_for(organisation.slug)
    suffix = f":{port}" if port not in ("", "80", "443") else ""
    return f"{scheme}://{host}{suffix}/join/{token}/"


def _organisation_locked(organisation: Organisation) -> Organisation:
    return Organisation.objects.select_for_update().get(pk=organisation.pk)


def _check_inviter(actor: Membership, role: str) -> Role:
    new_role = _role_checked(role)
    if not actor.has_role(Role.ADMIN):
        raise NotAllowed("Only an admin can invite people.")
    if new_role == Role.OWNER and actor.role != Role.OWNER:
        raise NotAllowed("Only an owner can invite another owner.")
    return new_role


def _email_checked(organisation: Organisation, raw: str) -> str:
    email = (raw or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed(
            f"“{raw}” is not a valid email address.", extra={"field": "email"}
        ) from None
    if not organisation.email_allowed(email):
        domains = ", ".join(organisation.allowed_email_domains)
        raise ValidationFailed(
            f"{email}: this organisation only admits addresses at {domains}.",
            extra={"field": "email"},
        )
    return email


def _seat_check(organisation: Organisation, wanted: int = 1) -> None:
    used = seats_used(organisation=organisation)
    if used + wanted > organisation.seats:
        raise Conflict(
            f"All {organisation.seats} seats of the plan are taken ({used} members and "
            "pending invitations). Remove a member or revoke an invitation, or upgrade the plan.",
            extra={"field": "seats", "seats": organisation.seats, "used": used},
        )


def _send(invitation: Invitation, token: str, inviter: User | None) -> None:
    organisation = invitation.organisation
    url = invitation_url(organisation=organisation, token=token)
    who = (inviter.display_name or inviter.email) if inviter else "An administrator"
    send_mail(
        subject=f"You are invited to {organisation.name} on Systems Design Lab",
        message=(
            f"{who} invites you to join {organisation.name} as {invitation.role}.\n\n"
            f"Accept the invitation here:\n{url}\n\n"
            f"The link works once and expires on {invitation.expires_at:%d %B %Y}.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )
    invitation.sent_count += 1
    invitation.last_sent_at = timezone.now()
    invitation.save(update_fields=["sent_count", "last_sent_at"])


@dataclass
class Invited:
    invitation: Invitation
    token: str


def _invite_one(
    *, actor: Membership, organisation: Organisation, email: str, role: Role
) -> Invited:
    email = _email_checked(organisation, email)
    if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member.", extra={"field": "email"})
    now = timezone.now()
    pending = Invitation.objects.filter(
        organisation=organisation,
        kind=InvitationKind.EMAIL,
        email=email,
        revoked_at__isnull=True,
        uses=0,
        expires_at__gt=now,
    )
    if pending.exists():
        raise Conflict(
            f"{email} already has a pending invitation: resend it instead.",
            extra={"field": "email"},
        )
    _seat_check(organisation)
    token, hashed = _new_token()
    invitation = Invitation.objects.create(
        organisation=organisation,
        kind=InvitationKind.EMAIL,
        email=email,
        role=role,
        token_hash=hashed,
        created_by=actor.user,
        expires_at=now + timedelta(days=EMAIL_INVITATION_DAYS),
        max_uses=1,
    )
    audit_record(
        organisation=organisation,
        actor=actor.user,
        action="invitation.created",
        target=email,
        after={"role": role.value, "kind": "email"},
    )
    transaction.on_commit(lambda: _send(invitation, token, actor.user))
    return Invited(invitation, token)


@transaction.atomic
def invitation_create(*, actor: Membership, email: str, role: str = Role.LEARNER) -> Invited:
    new_role = _check_inviter(actor, role)
    organisation = _organisation_locked(actor.organisation)
    return _invite_one(actor=actor, organisation=organisation, email=email, role=new_role)


@dataclass
class BulkRow:
    row: int
    email: str
    role: str
    ok: bool
    message: str


@dataclass
class BulkReport:
    rows: list[BulkRow] = field(default_factory=list)

    @property
    def invited(self) -> int:
        return sum(1 for r in self.rows if r.ok)

    @property
    def refused(self) -> int:
        return sum(1 for r in self.rows if not r.ok)


def _csv_rows(text: str, default_role: str) -> list[tuple[int, str, str]]:
    """(line, email, role) from "email" or "email,role" lines; a header line is skipped."""
    rows = []
    for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in record]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower() in ("email", "e-mail", "email address"):
            continue
        email = cells[0]
        role = (cells[1] if len(cells) > 1 and cells[1] else default_role).lower()
        rows.append((number, email, role))
    return rows


def invitations_create_bulk(
    *, actor: Membership, text: str, default_role: str = Role.LEARNER
) -> BulkReport:
    """Invites every valid row of a CSV ("email" or "email,role" per line); each row is
    its own transaction, and the report says, per row, what was invalid."""
    _check_inviter(actor, default_role)
    if "\0" in text:
        raise ValidationFailed("The file is not a text CSV file.", extra={"field": "csv"})
    rows = _csv_rows(text, default_role)
    if not rows:
        raise ValidationFailed("The list holds no email address.", extra={"field": "csv"})
    if len(rows) > BULK_MAX_ROWS:
        raise ValidationFailed(
            f"At most {BULK_MAX_ROWS} rows at once; this list has {len(rows)}.",
            extra={"field": "csv"},
        )
    report = BulkReport()
    for line, email, role in rows:
        try:
            with transaction.atomic():
                new_role = _check_inviter(actor, role)
                organisation = _organisation_locked(actor.organisation)
                _invite_one(actor=actor, organisation=organisation, email=email, role=new_role)
            report.rows.append(BulkRow(line, email, role, True, "invited"))
        except (ValidationFailed, Conflict, NotAllowed) as exc:
            report.rows.append(BulkRow(line, email, role, False, exc.message))
    return report


@transaction.atomic
def invitation_link_create(
    *,
    actor: Membership,
    role: str = Role.LEARNER,
    expires_in_days: int = 7,
    max_uses: int = 50,
    allowed_domain: str = "",
) -> Invited:
    new_role = _check_inviter(actor, role)
    if new_role in (Role.OWNER, Role.ADMIN):
        raise ValidationFailed(
            "An invitation link can give the instructor or learner role only.",
            extra={"field": "role"},
        )
    if not 1 <= int(expires_in_days) <= LINK_MAX_DAYS:
        raise ValidationFailed(
            f"A link expires after 1 to {LINK_MAX_DAYS} days.", extra={"field": "expires_in_days"}
        )
    if not 1 <= int(max_uses) <= LINK_MAX_USES:
        raise ValidationFailed(
            f"A link can be used 1 to {LINK_MAX_USES} times.", extra={"field": "max_uses"}
        )
    domain = (allowed_domain or "").strip().lower().lstrip("@")
    if domain and ("." not in domain or "@" in domain or " " in domain):
        raise ValidationFailed(
            f"“{allowed_domain}” is not an email domain (example: university.edu).",
            extra={"field": "allowed_domain"},
        )
    organisation = actor.organisation
    token, hashed = _new_token()
    invitation = Invitation.objects.create(
        organisation=organisation,
        kind=InvitationKind.LINK,
        role=new_role,
        token_hash=hashed,
        created_by=actor.user,
        expires_at=timezone.now() + timedelta(days=int(expires_in_days)),
        max_uses=int(max_uses),
        allowed_domain=domain,
    )
    audit_record(
        organisation=organisation,
        actor=actor.user,
        action="invitation_link.created",
        target=f"link #{invitation.pk}",
        after={
            "role": new_role.value,
            "max_uses": invitation.max_uses,
            "expires_at": invitation.expires_at.isoformat(),
            "allowed_domain": domain,
        },
    )
    return Invited(invitation, token)


def _pending_for_update(actor: Membership, invitation: Invitation) -> Invitation:
    if not actor.has_role(Role.ADMIN):
        raise NotAllowed("Only an admin can manage invitations.")
    return Invitation.objects.select_for_update().get(
        pk=invitation.pk, organisation=actor.organisation
    )


@transaction.atomic
def invitation_resend(*, actor: Membership, invitation: Invitation) -> Invited:
    """A new token and a new expiry: the earlier email's link stops working."""
    invitation = _pending_for_update(actor, invitation)
    if invitation.kind != InvitationKind.EMAIL:
        raise ValidationFailed("Only an email invitation can be resent.", extra={"field": "kind"})
    state = invitation.state(timezone.now())
    if state in ("revoked", "used"):
        raise Conflict(f"This invitation was {state}; it cannot be resent.")
    token, invitation.token_hash = _new_token()
    invitation.expires_at = timezone.now() + timedelta(days=EMAIL_INVITATION_DAYS)
    invitation.save(update_fields=["token_hash", "expires_at"])
    audit_record(
        organisation=invitation.organisation,
        actor=actor.user,
        action="invitation.resent",
        target=invitation.email,
    )
    transaction.on_commit(lambda: _send(invitation, token, actor.user))
    return Invited(invitation, token)


@transaction.atomic
def invitation_revoke(*, actor: Membership, invitation: Invitation) -> Invitation:
    invitation = _pending_for_update(actor, invitation)
    if invitation.revoked_at:
        return invitation
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        organisation=invitation.organisation,
        actor=actor.user,
        action="invitation.revoked",
        target=invitation.email or f"link #{invitation.pk}",
    )
    return invitation


def invitation_for_token(*, token: str) -> Invitation:
    """The invitation a token opens, or a clear refusal of why it does not."""
    invitation = (
        Invitation.objects.select_related("organisation", "created_by")
        .filter(token_hash=token_hash(token or ""))
        .first()
    )
    if invitation is None:
        raise ValidationFailed(
            "This invitation link is not valid. Check that you copied all of it, or ask "
            "for a new invitation.",
            extra={"field": "token"},
        )
    state = invitation.state(timezone.now())
    messages = {
        "revoked": "This invitation was revoked by an administrator.",
        "used": "This invitation has already been used.",
        "expired": "This invitation has expired. Ask an administrator to send a new one.",
    }
    if state != "pending":
        raise ValidationFailed(messages[state], extra={"field": "token", "state": state})
    return invitation


@transaction.atomic
def invitation_accept(*, user: User, token: str) -> Membership:
    found = invitation_for_token(token=token)
    organisation = _organisation_locked(found.organisation)
    invitation = Invitation.objects.select_for_update().get(pk=found.pk)
    invitation_for_token(token=token)  # again, under the lock: a use may just have happened
    existing = Membership.objects.filter(organisation=organisation, user=user).first()
    if existing is not None:
        return existing  # already in: nothing used up
    email = user.email.lower()
    if invitation.kind == InvitationKind.EMAIL:
        if email != invitation.email:
            raise ValidationFailed(
                f"This invitation is for {invitation.email}; you are signed in as {email}.",
                extra={"field": "email"},
            )
    else:
        domain = email.rsplit("@", 1)[-1]
        if invitation.allowed_domain and domain != invitation.allowed_domain:
            raise ValidationFailed(
                f"This link admits addresses at {invitation.allowed_domain} only.",
                extra={"field": "email"},
            )
        if not organisation.email_allowed(email):
            raise ValidationFailed(
                "This organisation does not admit addresses at that domain.",
                extra={"field": "email"},
            )
        _seat_check(organisation)
    invitation.uses += 1
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["uses", "accepted_at"])
    membership = Membership.objects.create(
        user=user, organisation=organisation, role=invitation.role
    )
    audit_record(
        organisation=organisation,
        actor=user,
        action="invitation.accepted",
        target=email,
        after={"role": invitation.role, "kind": invitation.kind},
    )
    return membership


def invitation_accept_new_user(
    *, token: str, password: str, display_name: str = "", email: str = ""
) -> Membership:
    """A person without an account accepts: for an email invitation the account is
    created with the invited (and thereby proven) address; a link needs a sign-up with a
    verified address first."""
    invitation = invitation_for_token(token=token)
    if invitation.kind != InvitationKind.EMAIL:
        raise ValidationFailed(
            "Sign up or log in first, then open this link again.", extra={"field": "email"}
        )
    if email and email.strip().lower() != invitation.email:
        raise ValidationFailed(
            f"This invitation is for {invitation.email}.", extra={"field": "email"}
        )
    with transaction.atomic():
        user = user_create(
            email=invitation.email,
            password=password,
            display_name=display_name,
            email_verified=True,
        )
        return invitation_accept(user=user, token=token)
