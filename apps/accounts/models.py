from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

from apps.tenants.models import Organisation


class AccountManager(UserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A person, in the public schema: one login for every organisation they belong to."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=120, blank=True)

    objects = AccountManager()  # type: ignore[misc]

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    def __str__(self) -> str:
        return self.display_name or self.email


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    INSTRUCTOR = "instructor", "Instructor"
    LEARNER = "learner", "Learner"


# The roles an invitation link may give (a link is shared: never admin or owner).
LINK_ROLES = [(Role.LEARNER.value, "Learner"), (Role.INSTRUCTOR.value, "Instructor")]

# Each role can do everything the roles after it can.
ROLE_RANK = {Role.OWNER: 4, Role.ADMIN: 3, Role.INSTRUCTOR: 2, Role.LEARNER: 1}


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.LEARNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} as {self.role}"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class InvitationKind(models.TextChoices):
    EMAIL = "email", "Email"
    LINK = "link", "Link"


class Invitation(models.Model):
    """An invitation to join an organisation: to one email address (single use), or a link
    anyone may follow (with an expiry, a use limit and an optional email domain).

    Only a hash of the token is kept; the token itself is in the email or link alone."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    kind = models.CharField(max_length=10, choices=InvitationKind.choices)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.LEARNER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0)
    allowed_domain = models.CharField(max_length=255, blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organisation", "kind", "email"])]

    def __str__(self) -> str:
        return f"{self.kind} invitation to {self.organisation} as {self.role}"

    def state(self, now: Any) -> str:
        if self.revoked_at:
            return "revoked"
        if self.uses >= self.max_uses:
            return "used"
        if self.expires_at <= now:
            return "expired"
        return "pending"


class AuditEntry(models.Model):
    """One admin action in an organisation: who did what to what, when, before and after."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_email = models.EmailField(blank=True)  # kept when the actor's account is deleted
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=255, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organisation", "action", "created_at"])]

    def __str__(self) -> str:
        return f"{self.actor_email} {self.action} {self.target}"
