"""Learners' progress through tutorials, and the cohorts instructors teach; all in the
organisation's schema.

A tutorial is named by its slug and whether it is the organisation's own (its table in
this schema) or the platform's (the public schema's): the two live in different schemas,
so a foreign key could not point at both. Steps and checks are named by their slugs and
ids in the tutorial's content, which is what a reload keeps stable.
"""

from django.conf import settings
from django.db import models


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", "In progress"
    COMPLETED = "completed", "Completed"


class Enrolment(models.Model):
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    tutorial_slug = models.SlugField(max_length=80)
    own = models.BooleanField(default=False)  # the organisation's tutorial, not the platform's
    status = models.CharField(
        max_length=20, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )
    lab_session = models.ForeignKey(
        "scenarios.LabSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.PositiveIntegerField(default=0)
    max_score = models.PositiveIntegerField(default=0)
    enrolled_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_activity_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["learner", "tutorial_slug"], name="one_enrolment_per_tutorial"
            )
        ]
        indexes = [models.Index(fields=["tutorial_slug", "status"])]

    def __str__(self) -> str:
        return f"enrolment {self.pk} ({self.tutorial_slug}, {self.status})"


class StepStatus(models.TextChoices):
    LOCKED = "locked", "Locked"  # waits for the steps it depends on
    OPEN = "open", "Open"
    PASSED = "passed", "Passed"


class StepProgress(models.Model):
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="steps")
    step_slug = models.SlugField(max_length=80)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.LOCKED)
    attempts = models.PositiveIntegerField(default=0)  # answers that were wrong
    wrong_answers = models.JSONField(default=dict, blank=True)  # check id -> wrong answers
    score = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    passed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["enrolment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["enrolment", "step_slug"], name="one_progress_per_step")
        ]

    def __str__(self) -> str:
        return f"{self.enrolment.tutorial_slug}/{self.step_slug}: {self.status}"

    @property
    def seconds_on_task(self) -> float | None:
        if self.opened_at is None or self.passed_at is None:
            return None
        return (self.passed_at - self.opened_at).total_seconds()


class CheckResult(models.Model):
    """A check that passed: written once (the unique key makes a second write a no-op)."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="checks")
    step_slug = models.SlugField(max_length=80)
    check_id = models.SlugField(max_length=80)
    points = models.PositiveIntegerField()
    max_points = models.PositiveIntegerField()
    source = models.CharField(max_length=20)  # telemetry | quiz
    passed_at = models.DateTimeField()

    class Meta:
        ordering = ["passed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "step_slug", "check_id"], name="one_result_per_check"
            )
        ]

    def __str__(self) -> str:
        return f"{self.step_slug}/{self.check_id}: {self.points}/{self.max_points}"


class Cohort(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CohortMember(models.Model):
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="members")
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cohort", "learner"], name="one_membership_per_cohort")
        ]

    def __str__(self) -> str:
        return f"{self.cohort_id}: {self.learner_id}"


class Assignment(models.Model):
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="assignments")
    tutorial_slug = models.SlugField(max_length=80)
    own = models.BooleanField(default=False)
    due_at = models.DateTimeField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "tutorial_slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["cohort", "tutorial_slug"], name="one_assignment_per_tutorial"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tutorial_slug} for cohort {self.cohort_id}"


class Drill(models.Model):
    """An incident drill: a hidden scenario pushed into every running lab of a cohort."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="drills")
    scenario = models.CharField(max_length=80)
    parameters = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cohort"],
                condition=models.Q(ended_at__isnull=True),
                name="one_running_drill_per_cohort",
            )
        ]

    def __str__(self) -> str:
        return f"drill {self.pk}: {self.scenario}"


class DrillRun(models.Model):
    """One learner's part in a drill: when the fault went in, when they said they saw it,
    when its signature was gone."""

    drill = models.ForeignKey(Drill, on_delete=models.CASCADE, related_name="runs")
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    lab_session = models.ForeignKey(
        "scenarios.LabSession", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    baseline = models.JSONField(default=dict, blank=True)  # the lab's figures before the fault
    injected_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    failure = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["drill", "learner"], name="one_run_per_drill")
        ]

    def __str__(self) -> str:
        return f"drill {self.drill_id}, learner {self.learner_id}"

    @property
    def seconds_to_detect(self) -> float | None:
        if self.injected_at is None or self.detected_at is None:
            return None
        return (self.detected_at - self.injected_at).total_seconds()

    @property
    def seconds_to_mitigate(self) -> float | None:
        if self.injected_at is None or self.mitigated_at is None:
            return None
        return (self.mitigated_at - self.injected_at).total_seconds()
