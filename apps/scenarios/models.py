from django.conf import settings
from django.db import models


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


class LabSession(models.Model):
    """One learner's run of a lab: one sandbox, in the organisation's schema."""

    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    scenario_set = models.CharField(max_length=100)
    state = models.CharField(
        max_length=20, choices=LabSessionState.choices, default=LabSessionState.REQUESTED
    )
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"lab session {self.pk} ({self.scenario_set}, {self.state})"
