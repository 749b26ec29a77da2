"""Reads of learners' progress: one learner's guide through a tutorial and their
dashboard (what to resume, what is assigned and due, what is done)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.accounts.models import User
from apps.progress.models import (
    Assignment,
    CheckResult,
    CohortMember,
    DrillRun,
    Enrolment,
    EnrolmentStatus,
    StepProgress,
    StepStatus,
)
from apps.scenarios.prose import MARKDOWN
from apps.tutorials.models import Tutorial
from apps.tutorials.selectors import series_title, tutorial_get, tutorials_visible


def enrolment_of(*, learner: User, slug: str) -> Enrolment | None:
    return Enrolment.objects.filter(learner=learner, tutorial_slug=slug).first()


def hints_visible(
    hints: list[dict[str, Any]], progress: StepProgress | None, now: datetime
) -> list[str]:
    """The hints a learner has earned by being stuck: long enough on the step, or
    enough wrong answers in it."""
    if progress is None or progress.status != StepStatus.OPEN or progress.opened_at is None:
        return []
    waited = (now - progress.opened_at).total_seconds()
    shown = []
    for hint in hints:
        after_s, after_n = hint.get("after_seconds"), hint.get("after_attempts")
        if (after_s is not None and waited >= after_s) or (
            after_n is not None and progress.attempts >= after_n
        ):
            shown.append(hint["text"])
    return shown


def next_hint_in(
    hints: list[dict[str, Any]], progress: StepProgress | None, now: datetime
) -> int | None:
    """Seconds until the next timed hint appears (the page looks again then)."""
    if progress is None or progress.status != StepStatus.OPEN or progress.opened_at is None:
        return None
    waited = (now - progress.opened_at).total_seconds()
    waits = [h["after_seconds"] - waited for h in hints if (h.get("after_seconds") or 0) > waited]
    return max(1, math.ceil(min(waits))) if waits else None


@dataclass
class GuideStep:
    slug: str
    title: str
    html: str
    status: str
    checks: list[dict[str, Any]]
    hints: list[str]
    attempts: int
    score: int
    depends_on: list[str] = field(default_factory=list)


@dataclass
class Guide:
    tutorial: Tutorial
    own: bool
    series: str
    intro: str
    enrolment: Enrolment | None
    steps: list[GuideStep]
    next_hint_s: int | None

    @property
    def current(self) -> GuideStep | None:
        return next((s for s in self.steps if s.status == StepStatus.OPEN), None)

    @property
    def passed(self) -> int:
        return sum(1 for s in self.steps if s.status == StepStatus.PASSED)


def guide_read(*, slug: str, learner: User) -> Guide | None:
    """A tutorial as one learner sees it: each step's state, which checks passed (with
    their points and message), quizzes without their answers, the hints they earned."""
    found = tutorial_get(slug=slug)
    if found is None:
        return None
    tutorial, own = found
    enrolment = enrolment_of(learner=learner, slug=slug)
    progress: dict[str, StepProgress] = {}
    results: dict[tuple[str, str], CheckResult] = {}
    if enrolment is not None:
        progress = {p.step_slug: p for p in StepProgress.objects.filter(enrolment=enrolment)}
        results = {
            (r.step_slug, r.check_id): r for r in CheckResult.objects.filter(enrolment=enrolment)
        }
    now = timezone.now()
    steps, waits = [], []
    for step in tutorial.steps.all():
        mine = progress.get(step.slug)
        checks = []
        for check in step.checks:
            result = results.get((step.slug, check["id"]))
            shown = {k: v for k, v in check.items() if k != "spec"}
            spec = dict(check["spec"])
            if check["type"] == "quiz":  # which answer is right is not sent to the page
                spec["choices"] = [{"text": c["text"]} for c in spec["choices"]]
            checks.append(
                {
                    **shown,
                    "spec": spec,
                    "passed": result is not None,
                    "points_won": result.points if result else 0,
                }
            )
        steps.append(
            GuideStep(
                slug=step.slug,
                title=step.title,
                html=MARKDOWN.render(step.body),
                status=mine.status if mine else StepStatus.LOCKED,
                checks=checks,
                hints=hints_visible(step.hints, mine, now),
                attempts=mine.attempts if mine else 0,
                score=mine.score if mine else 0,
                depends_on=list(step.depends_on),
            )
        )
        wait = next_hint_in(step.hints, mine, now)
        if wait is not None:
            waits.append(wait)
    return Guide(
        tutorial=tutorial,
        own=own,
        series=series_title(tutorial.series),
        intro=MARKDOWN.render(tutorial.body),
        enrolment=enrolment,
        steps=steps,
        next_hint_s=min(waits) if waits else None,
    )


@dataclass
class DashboardItem:
    slug: str
    title: str
    series: str
    minutes: int
    enrolment: Enrolment | None
    steps_passed: int
    steps_total: int
    due_at: datetime | None = None
    cohort: str = ""
    minutes_on_task: int = 0

    @property
    def overdue(self) -> bool:
        done = self.enrolment is not None and self.enrolment.status == EnrolmentStatus.COMPLETED
        return self.due_at is not None and not done and self.due_at < timezone.now()


@dataclass
class Dashboard:
    resume: list[DashboardItem]
    assigned: list[DashboardItem]
    completed: list[DashboardItem]
    drills: list[DrillRun] = field(default_factory=list)  # incidents waiting to be found


def _seconds_covered(spans: list[tuple[datetime, datetime]]) -> float:
    """The time the spans cover, a stretch shared by steps open side by side once."""
    total, reached = 0.0, None
    for start, end in sorted(spans):
        if reached is not None:
            start = max(start, reached)
        if end > start:
            total += (end - start).total_seconds()
        reached = end if reached is None else max(reached, end)
    return total


def learner_dashboard(*, learner: User) -> Dashboard:
    """What a learner does next: tutorials in progress (most recent first), tutorials
    assigned to their cohorts that are not done (soonest due first), and completed work."""
    visible = tutorials_visible()
    tutorials = {t.slug: t for t in visible["platform"]}
    tutorials.update({t.slug: t for t in visible["own"]})  # the organisation's own win
    enrolments = {e.tutorial_slug: e for e in Enrolment.objects.filter(learner=learner)}
    passed: dict[int, int] = {}
    spans: dict[int, list[tuple[datetime, datetime]]] = {}  # each step, opening to passing
    for enrolment_id, opened, done in StepProgress.objects.filter(
        enrolment__learner=learner, status=StepStatus.PASSED
    ).values_list("enrolment_id", "opened_at", "passed_at"):
        passed[enrolment_id] = passed.get(enrolment_id, 0) + 1
        if opened is not None and done is not None:
            spans.setdefault(enrolment_id, []).append((opened, done))
    on_task = {enrolment_id: _seconds_covered(times) for enrolment_id, times in spans.items()}

    def item(slug: str, **extra: Any) -> DashboardItem | None:
        tutorial = tutorials.get(slug)
        if tutorial is None:
            return None
        enrolment = enrolments.get(slug)
        return DashboardItem(
            slug=slug,
            title=tutorial.title,
            series=series_title(tutorial.series),
            minutes=tutorial.minutes,
            enrolment=enrolment,
            steps_passed=passed.get(enrolment.pk, 0) if enrolment else 0,
            minutes_on_task=round(on_task.get(enrolment.pk, 0.0) / 60) if enrolment else 0,
            steps_total=getattr(tutorial, "step_count", 0),
            **extra,
        )

    cohorts = CohortMember.objects.filter(learner=learner).values_list("cohort_id", flat=True)
    assigned: list[DashboardItem] = []
    for assignment in Assignment.objects.filter(cohort_id__in=list(cohorts)).select_related(
        "cohort"
    ):
        enrolment = enrolments.get(assignment.tutorial_slug)
        if enrolment is not None and enrolment.status == EnrolmentStatus.COMPLETED:
            continue
        found = item(
            assignment.tutorial_slug, due_at=assignment.due_at, cohort=assignment.cohort.name
        )
        if found is not None and all(a.slug != found.slug for a in assigned):
            assigned.append(found)
    assigned.sort(key=lambda a: (a.due_at is None, a.due_at or timezone.now()))
    resume = [
        found
        for e in sorted(enrolments.values(), key=lambda e: e.last_activity_at, reverse=True)
        if e.status == EnrolmentStatus.ACTIVE and (found := item(e.tutorial_slug)) is not None
    ]
    completed = [
        found
        for e in sorted(
            enrolments.values(), key=lambda e: e.completed_at or e.last_activity_at, reverse=True
        )
        if e.status == EnrolmentStatus.COMPLETED and (found := item(e.tutorial_slug)) is not None
    ]
    drills = list(
        DrillRun.objects.filter(
            learner=learner,
            injected_at__isnull=False,
            detected_at__isnull=True,
            drill__ended_at__isnull=True,
        )
    )
    return Dashboard(resume=resume, assigned=assigned, completed=completed, drills=drills)
