"""Instructors' reads: a cohort's progress on one tutorial as a matrix (learners by
steps), its completion funnel, the learners who are stuck, the median time per step, and
the same as CSV. A fixed handful of queries whatever the cohort's size: learners,
enrolments and step rows are each read once, then joined here."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from apps.accounts.models import User
from apps.progress.models import (
    Assignment,
    Cohort,
    CohortMember,
    Enrolment,
    EnrolmentStatus,
    StepProgress,
    StepStatus,
)
from apps.scenarios.models import ACTIVE_STATES
from apps.tutorials.models import Tutorial
from apps.tutorials.selectors import tutorial_get

FILTERS = ("all", "not-started", "in-progress", "completed", "stuck")


@dataclass
class Cell:
    status: str  # locked | open | passed | none (not enrolled)
    attempts: int = 0
    seconds: float | None = None


@dataclass(frozen=True)
class EnrolmentSummary:
    """What a row shows of an enrolment: read as values, hundreds at a time."""

    pk: int
    status: str
    score: int
    max_score: int
    last_activity_at: datetime
    lab_session_id: int | None
    lab_active: bool


@dataclass
class Row:
    learner_id: int
    email: str
    name: str
    enrolment: EnrolmentSummary | None
    cells: list[Cell]
    last_activity_at: datetime | None
    stuck_reason: str = ""

    @property
    def state(self) -> str:
        if self.enrolment is None:
            return "not-started"
        return "completed" if self.enrolment.status == EnrolmentStatus.COMPLETED else "in-progress"


@dataclass
class FunnelStep:
    slug: str
    title: str
    passed: int
    share: float  # of the cohort's learners
    median_seconds: float | None


@dataclass
class CohortReport:
    cohort: Cohort
    tutorial: Tutorial
    steps: list[tuple[str, str]]  # (slug, title)
    rows: list[Row]
    learners: int
    enrolled: int
    completed: int
    funnel: list[FunnelStep] = field(default_factory=list)

    @property
    def stuck(self) -> list[Row]:
        return [r for r in self.rows if r.stuck_reason]

    def filtered(self, which: str, search: str = "") -> list[Row]:
        rows = self.rows
        if which == "stuck":
            rows = self.stuck
        elif which in FILTERS and which != "all":
            rows = [r for r in rows if r.state == which]
        if search:
            needle = search.lower()
            rows = [r for r in rows if needle in r.email.lower() or needle in r.name.lower()]
        return rows


def cohorts_list(*, search: str = "") -> list[Cohort]:
    cohorts = Cohort.objects.annotate(
        member_count=Count("members", distinct=True),
        assignment_count=Count("assignments", distinct=True),
    )
    if search:
        cohorts = cohorts.filter(name__icontains=search)
    return list(cohorts.order_by("name"))


def cohort_learners(*, cohort: Cohort) -> list[User]:
    ids = list(CohortMember.objects.filter(cohort=cohort).values_list("learner_id", flat=True))
    return list(User.objects.filter(pk__in=ids).order_by("email"))


def cohort_assignments(*, cohort: Cohort) -> list[tuple[Assignment, Tutorial | None]]:
    out = []
    for assignment in Assignment.objects.filter(cohort=cohort):
        found = tutorial_get(slug=assignment.tutorial_slug)
        out.append((assignment, found[0] if found else None))
    return out


# (enrolment id, step, status, wrong answers, opened at, passed at): read as plain values,
# not models, because a cohort of hundreds has thousands of them.
StepRow = tuple[int, str, str, int, datetime | None, datetime | None]


def _stuck_reason(enrolment: EnrolmentSummary, steps: list[StepRow], now: datetime) -> str:
    if enrolment.status == EnrolmentStatus.COMPLETED:
        return ""
    current = next((s for s in steps if s[2] == StepStatus.OPEN), None)
    if current is not None and current[3] >= settings.PROGRESS_STUCK_ATTEMPTS:
        return f"{current[3]} wrong answers on “{current[1]}”"
    idle = now - enrolment.last_activity_at
    if idle >= timedelta(seconds=settings.PROGRESS_STUCK_AFTER_S):
        minutes = int(idle.total_seconds() // 60)
        return f"no progress for {minutes} min"
    return ""


def cohort_report(*, cohort: Cohort, tutorial_slug: str) -> CohortReport | None:
    """The cohort's progress on one tutorial: a row per learner, a cell per step."""
    found = tutorial_get(slug=tutorial_slug)
    if found is None:
        return None
    tutorial = found[0]
    steps = [(s.slug, s.title) for s in tutorial.steps.all()]
    members = CohortMember.objects.filter(cohort=cohort).values("learner_id")
    learners = list(
        User.objects.filter(pk__in=members)
        .order_by("email")
        .values_list("id", "email", "display_name")
    )
    enrolments = Enrolment.objects.filter(tutorial_slug=tutorial_slug, learner_id__in=members)
    by_learner = {
        learner: EnrolmentSummary(
            pk, status, score, max_score, last_activity, lab, lab_state in ACTIVE_STATES
        )
        for pk, learner, status, score, max_score, last_activity, lab, lab_state in (
            enrolments.values_list(
                "id",
                "learner_id",
                "status",
                "score",
                "max_score",
                "last_activity_at",
                "lab_session_id",
                "lab_session__state",
            )
        )
    }
    progress: dict[int, list[StepRow]] = {}
    for row in (
        StepProgress.objects.filter(enrolment__in=enrolments.values("pk"))
        .order_by("position")
        .values_list("enrolment_id", "step_slug", "status", "attempts", "opened_at", "passed_at")
    ):
        progress.setdefault(row[0], []).append(row)
    now = timezone.now()
    rows = []
    durations: dict[str, list[float]] = {slug: [] for slug, _ in steps}
    passed_count: dict[str, int] = {slug: 0 for slug, _ in steps}
    for learner_id, email, name in learners:
        enrolment = by_learner.get(learner_id)
        mine = progress.get(enrolment.pk, []) if enrolment else []
        by_step = {p[1]: p for p in mine}
        cells = []
        for slug, _ in steps:
            p = by_step.get(slug)
            if p is None:
                cells.append(Cell("none"))
                continue
            _, _, status, attempts, opened, passed = p
            seconds = (passed - opened).total_seconds() if opened and passed else None
            cells.append(Cell(status, attempts, seconds))
            if status == StepStatus.PASSED:
                passed_count[slug] += 1
                if seconds is not None:
                    durations[slug].append(seconds)
        rows.append(
            Row(
                learner_id=learner_id,
                email=email,
                name=name,
                enrolment=enrolment,
                cells=cells,
                last_activity_at=enrolment.last_activity_at if enrolment else None,
                stuck_reason=_stuck_reason(enrolment, mine, now) if enrolment else "",
            )
        )
    total = len(learners)
    funnel = [
        FunnelStep(
            slug=slug,
            title=title,
            passed=passed_count[slug],
            share=(passed_count[slug] / total) if total else 0.0,
            median_seconds=statistics.median(durations[slug]) if durations[slug] else None,
        )
        for slug, title in steps
    ]
    return CohortReport(
        cohort=cohort,
        tutorial=tutorial,
        steps=steps,
        rows=rows,
        learners=total,
        enrolled=len(by_learner),
        completed=sum(1 for e in by_learner.values() if e.status == EnrolmentStatus.COMPLETED),
        funnel=funnel,
    )


def cohort_report_csv(report: CohortReport) -> str:
    """One line per learner and step: what a spreadsheet needs to redo the matrix."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["learner", "tutorial", "step", "status", "wrong_answers", "seconds_on_step", "score"]
    )
    for row in report.rows:
        for (slug, _), cell in zip(report.steps, row.cells, strict=True):
            writer.writerow(
                [
                    _csv_safe(row.email),
                    report.tutorial.slug,
                    slug,
                    "not-enrolled" if cell.status == "none" else cell.status,
                    cell.attempts,
                    "" if cell.seconds is None else round(cell.seconds),
                    row.enrolment.score if row.enrolment else "",
                ]
            )
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value
