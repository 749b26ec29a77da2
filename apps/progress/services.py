"""Writes to learners' progress: enrolling, starting a tutorial's lab, recording checks
that passed (once, whoever reports them first), answering quizzes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import User
from apps.progress.events import progress_publish
from apps.progress.models import (
    CheckResult,
    Enrolment,
    EnrolmentStatus,
    StepProgress,
    StepStatus,
)
from apps.scenarios.models import ACTIVE_STATES, LabSession
from apps.scenarios.services import lab_session_start
from apps.tenants.errors import ApplicationError, Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tutorials.checks import quiz_answer
from apps.tutorials.models import Step, Tutorial
from apps.tutorials.selectors import tutorial_get


class NotFound(ApplicationError):
    status_code = 404


def _tutorial(slug: str, own: bool | None = None) -> Tutorial:
    found = tutorial_get(slug=slug)
    if found is None or (own is not None and found[1] != own):
        raise NotFound(f"No tutorial “{slug}”.", extra={"field": "tutorial"})
    return found[0]


def _steps(tutorial: Tutorial) -> list[Step]:
    return list(tutorial.steps.all())


def enrolment_tutorial(enrolment: Enrolment) -> Tutorial:
    return _tutorial(enrolment.tutorial_slug, enrolment.own)


@transaction.atomic
def enrolment_create(*, learner: User, slug: str) -> Enrolment:
    """Enrols a learner in a tutorial (once: enrolling again returns the enrolment). Steps
    that depend on nothing open at once; the others wait for theirs."""
    existing = Enrolment.objects.filter(learner=learner, tutorial_slug=slug).first()
    if existing is not None:
        return existing
    found = tutorial_get(slug=slug)
    if found is None:
        raise NotFound(f"No tutorial “{slug}”.", extra={"field": "tutorial"})
    tutorial, own = found
    steps = _steps(tutorial)
    now = timezone.now()
    try:
        with transaction.atomic():
            enrolment = Enrolment.objects.create(
                learner=learner,
                tutorial_slug=slug,
                own=own,
                max_score=sum(c.get("points", 1) for s in steps for c in s.checks),
            )
    except IntegrityError:  # enrolled by a concurrent request a moment ago
        return Enrolment.objects.get(learner=learner, tutorial_slug=slug)
    StepProgress.objects.bulk_create(
        StepProgress(
            enrolment=enrolment,
            step_slug=step.slug,
            position=step.position,
            status=StepStatus.LOCKED if step.depends_on else StepStatus.OPEN,
            opened_at=None if step.depends_on else now,
        )
        for step in steps
    )
    return enrolment


def enrolment_steps_sync(*, enrolment: Enrolment) -> bool:
    """Follows the tutorial's content after an edit: a step added gets its progress row
    (open if what it depends on is passed), a step removed loses its own, and the
    possible score is counted again. Returns whether anything changed."""
    try:
        steps = _steps(enrolment_tutorial(enrolment))
    except NotFound:
        return False
    rows = {p.step_slug: p for p in StepProgress.objects.filter(enrolment=enrolment)}
    wanted = {step.slug: step for step in steps}
    max_score = sum(c.get("points", 1) for step in steps for c in step.checks)
    stale = set(rows) - set(wanted)
    missing = [step for slug, step in wanted.items() if slug not in rows]
    moved = [
        step for step in steps if step.slug in rows and rows[step.slug].position != step.position
    ]
    if not (stale or missing or moved) and enrolment.max_score == max_score:
        return False
    now = timezone.now()
    passed = {slug for slug, p in rows.items() if p.status == StepStatus.PASSED}
    with transaction.atomic():
        StepProgress.objects.filter(enrolment=enrolment, step_slug__in=stale).delete()
        StepProgress.objects.bulk_create(
            StepProgress(
                enrolment=enrolment,
                step_slug=step.slug,
                position=step.position,
                status=StepStatus.OPEN if set(step.depends_on) <= passed else StepStatus.LOCKED,
                opened_at=now if set(step.depends_on) <= passed else None,
            )
            for step in missing
        )
        for step in moved:
            StepProgress.objects.filter(pk=rows[step.slug].pk).update(position=step.position)
        Enrolment.objects.filter(pk=enrolment.pk).update(max_score=max_score)
        enrolment.max_score = max_score
        progress_publish(enrolment, "content")
    return True


def tutorial_lab_start(*, organisation: Organisation, enrolment: Enrolment) -> LabSession:
    """Starts the tutorial's lab for its learner (or returns the one already running for
    it); checks are evaluated against its frames from then on."""
    with transaction.atomic():
        # Locked: two clicks on Start at once start one lab, not one and a refusal.
        locked = Enrolment.objects.select_for_update(of=("self",)).select_related("lab_session")
        enrolment = locked.get(pk=enrolment.pk)
        current = enrolment.lab_session
        if current is not None and current.state in ACTIVE_STATES:
            return current
        tutorial = enrolment_tutorial(enrolment)
        learner = User.objects.get(pk=enrolment.learner_id)
        session = lab_session_start(
            organisation=organisation,
            learner=learner,
            scenario_set=f"tutorial: {tutorial.title}"[:100],
            scenarios=tutorial.scenarios,
        )
        Enrolment.objects.filter(pk=enrolment.pk).update(
            lab_session=session, last_activity_at=timezone.now()
        )
        enrolment.lab_session = session
        progress_publish(enrolment, "lab")
    return session


@dataclass(frozen=True)
class Recorded:
    created: bool
    step_passed: bool
    tutorial_completed: bool


def _points(check: dict[str, Any], wrong_attempts: int) -> int:
    """Full points at the first try; each wrong answer before it halves them (partial
    credit), never below one point for a check worth any."""
    points = int(check.get("points", 1))
    if points == 0:
        return 0
    return max(1, points >> min(wrong_attempts, 16))


def _step_advance(enrolment: Enrolment, step: Step, at: datetime) -> tuple[bool, bool]:
    """After a check passed: the score; the step passed when all its checks have
    results; the steps this unlocks opened; the enrolment completed with its last step.
    The caller holds the enrolment's row lock."""
    results = dict(
        CheckResult.objects.filter(enrolment=enrolment, step_slug=step.slug).values_list(
            "check_id", "points"
        )
    )
    step_passed = {c["id"] for c in step.checks} <= set(results)
    completed = False
    if step_passed:
        StepProgress.objects.filter(enrolment=enrolment, step_slug=step.slug).update(
            status=StepStatus.PASSED, passed_at=at, score=sum(results.values()), last_activity_at=at
        )
        progress = {p.step_slug: p for p in enrolment.steps.all()}
        steps = _steps(enrolment_tutorial(enrolment))
        passed = {slug for slug, p in progress.items() if p.status == StepStatus.PASSED}
        for later in steps:
            row = progress.get(later.slug)
            unlocked = set(later.depends_on) <= passed
            if row is not None and row.status == StepStatus.LOCKED and unlocked:
                StepProgress.objects.filter(pk=row.pk).update(status=StepStatus.OPEN, opened_at=at)
        completed = all(s.slug in passed for s in steps)
    total = CheckResult.objects.filter(enrolment=enrolment).aggregate(total=Sum("points"))
    Enrolment.objects.filter(pk=enrolment.pk).update(
        score=total["total"] or 0,
        last_activity_at=at,
        **({"status": EnrolmentStatus.COMPLETED, "completed_at": at} if completed else {}),
    )
    return step_passed, completed


def check_result_record(
    *,
    enrolment_id: int,
    step_slug: str,
    check_id: str,
    source: str = "telemetry",
    at: datetime | None = None,
    wrong_attempts: int = 0,
) -> Recorded:
    """Records that a check passed. Idempotent: the first report writes it, every later
    one (another relay, a retried task, a second tab) changes nothing."""
    at = at or timezone.now()
    with transaction.atomic():
        enrolment = Enrolment.objects.select_for_update().filter(pk=enrolment_id).first()
        if enrolment is None:
            raise NotFound("No such enrolment.", extra={"field": "enrolment"})
        step = next((s for s in _steps(enrolment_tutorial(enrolment)) if s.slug == step_slug), None)
        check = next((c for c in (step.checks if step else []) if c["id"] == check_id), None)
        if step is None or check is None:
            raise NotFound(f"No check “{step_slug}/{check_id}”.", extra={"field": "check"})
        progress = StepProgress.objects.filter(enrolment=enrolment, step_slug=step_slug).first()
        if progress is None or progress.status == StepStatus.LOCKED:
            raise Conflict(
                "This step opens when the steps it depends on are done.",
                extra={"field": "step", "depends_on": step.depends_on},
            )
        _, created = CheckResult.objects.get_or_create(
            enrolment=enrolment,
            step_slug=step_slug,
            check_id=check_id,
            defaults={
                "points": _points(check, wrong_attempts),
                "max_points": int(check.get("points", 1)),
                "source": source,
                "passed_at": at,
            },
        )
        if not created:
            return Recorded(False, False, False)
        step_passed, completed = _step_advance(enrolment, step, at)
        progress_publish(
            enrolment,
            "check",
            step=step_slug,
            check=check_id,
            step_passed=step_passed,
            completed=completed,
            message=check.get("message", ""),
        )
    return Recorded(True, step_passed, completed)


@dataclass(frozen=True)
class QuizOutcome:
    right: bool
    explanations: list[str]
    recorded: Recorded | None


def quiz_answer_submit(
    *, learner: User, enrolment_id: int, step_slug: str, check_id: str, chosen: list[int]
) -> QuizOutcome:
    """A learner answers a quiz of their own enrolment. A wrong answer counts as an
    attempt (hints may appear after some); a right one records the check."""
    enrolment = Enrolment.objects.filter(pk=enrolment_id, learner=learner).first()
    if enrolment is None:
        raise NotFound("No such enrolment.", extra={"field": "enrolment"})
    step = next((s for s in _steps(enrolment_tutorial(enrolment)) if s.slug == step_slug), None)
    check = next((c for c in (step.checks if step else []) if c["id"] == check_id), None)
    if check is None or check["type"] != "quiz":
        raise NotFound(f"No question “{step_slug}/{check_id}”.", extra={"field": "check"})
    try:
        right, explanations = quiz_answer(check, chosen)
    except ValueError as exc:
        raise ValidationFailed(f"{exc}.".capitalize(), extra={"field": "choices"}) from None
    with transaction.atomic():
        progress = (
            StepProgress.objects.select_for_update()
            .filter(enrolment=enrolment, step_slug=step_slug)
            .first()
        )
        if progress is None or progress.status == StepStatus.LOCKED:
            raise Conflict(
                "This step opens when the steps it depends on are done.",
                extra={"field": "step"},
            )
        already = CheckResult.objects.filter(
            enrolment=enrolment, step_slug=step_slug, check_id=check_id
        ).exists()
        if not right and not already:
            progress.attempts += 1
            progress.wrong_answers[check_id] = progress.wrong_answers.get(check_id, 0) + 1
        progress.last_activity_at = timezone.now()
        progress.save(update_fields=["attempts", "wrong_answers", "last_activity_at"])
        wrong = progress.wrong_answers.get(check_id, 0)
        if not right:
            progress_publish(enrolment, "attempt", step=step_slug, check=check_id)
    recorded = None
    if right:
        recorded = check_result_record(
            enrolment_id=enrolment.pk,
            step_slug=step_slug,
            check_id=check_id,
            source="quiz",
            wrong_attempts=wrong,
        )
    return QuizOutcome(right, explanations, recorded)
