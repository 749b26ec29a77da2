from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class LabSessionState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


FINISHED_STATES = frozenset(
    {LabSessionState.STOPPED, LabSessionState.FAILED, LabSessionState.EXPIRED}
)
MAX_TTL_S = 4 * 3600  # a lab lasts at most this long, extensions included
EXTEND_MAX_S = 3600
# The sandbox's own backstop: the platform expires sessions well before this.
SANDBOX_TTL_S = MAX_TTL_S + EXTEND_MAX_S

# A session in one of these holds (or is about to hold) a sandbox: it counts for the quota.
ACTIVE_STATES = (
    LabSessionState.REQUESTED,
    LabSessionState.STARTING,
    LabSessionState.RUNNING,
    LabSessionState.STOPPING,
)


class LabSession(models.Model):
    """One learner's run of a lab: one sandbox, in the organisation's schema."""

    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    scenario_set = models.CharField(max_length=100)
    # [[slug, {parameters}], ...]: the scenarios the sandbox starts with
    scenarios = models.JSONField(default=list, blank=True)
    state = models.CharField(
        max_length=20, choices=LabSessionState.choices, default=LabSessionState.REQUESTED
    )
    backend = models.CharField(max_length=20, blank=True)
    handle = models.JSONField(default=dict, blank=True)  # SandboxHandle.as_dict()
    limits = models.JSONField(default=dict, blank=True)
    ttl_seconds = models.PositiveIntegerField(default=3600)
    expires_at = models.DateTimeField(null=True, blank=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True)
    provision_attempts = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)  # provisioning began
    ready_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Every finished session has ended_at set, so "not ended" is "active"; a plain
            # IS NULL survives the schema cloning's catalog round trip unchanged.
            models.UniqueConstraint(
                fields=["learner"],
                condition=Q(ended_at__isnull=True),
                name="one_active_lab_per_learner",
            )
        ]
        indexes = [models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"lab session {self.pk} ({self.scenario_set}, {self.state})"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def sandbox_session_id(self, organisation_id: int) -> str:
        """The name the sandbox carries: enough for the reaper to find this row again."""
        return f"o{organisation_id}-s{self.pk}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "state": self.state,
            "scenario_set": self.scenario_set,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "failure_reason": self.failure_reason,
        }
