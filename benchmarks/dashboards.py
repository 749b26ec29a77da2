"""Instructor dashboards: the server time and query count of a cohort's progress matrix
and completion funnel.

    .venv/bin/python benchmarks/dashboards.py [--learners 500] [--small 50] [--tutorials 24]
                                              [--per-learner 12] [--repeats 20] [--seed 7]

Everything is its own: a scratch database `sdlab_bench_dashboards` next to DATABASE_URL's
(created, migrated and dropped here) and a folder of tutorials under /tmp. Nothing runs
but this process: pages are requested through Django's test client, in process.

- data: `--tutorials` platform tutorials of four steps (bench-01, ...), stored in the
  public schema by `tutorials_store`; one organisation with `--learners` learners and an
  instructor; each learner enrolled in `--per-learner` tutorials (nine in ten in bench-01,
  the one measured), with steps passed in varied amounts, wrong quiz answers, and the
  tutorial's lab session (stopped, or for a few running). A few enrolments are made
  through the services (enrolment_create, quiz_answer_submit, check_result_record) and
  compared with bulk-written rows of the same progress; the rest are bulk-written.
- two cohorts, of `--small` and of `--learners` members, both assigned bench-01;
- measured on bench-01, each `--repeats` times after one untimed call: `cohort_report`
  (the matrix rows and the funnel), the progress page GET /cohorts/<id>/tutorials/<slug>/
  (a page of 50 rows) and its matrix fragment (.../matrix/), requested as the instructor:
  median and p95 of the server time, with this process's CPU time in it (Python) and the
  time the ORM waited on SQL; the query count, with django-tenants' SET search_path among
  them and the query repeated most (a query per row shows there). For both cohorts.

Targets (the dashboards issue): under 200 ms, and a query count that does not grow with
the number of learners.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from django.test import Client

    from apps.accounts.models import User
    from apps.progress.models import CheckResult, Cohort, Enrolment, StepProgress
    from apps.progress.reports import CohortReport
    from apps.scenarios.models import LabSession
    from apps.tenants.models import Organisation
    from apps.tutorials.content import Check
    from apps.tutorials.content import Tutorial as TutorialContent

BENCH_DB = "sdlab_bench_dashboards"
TAG = f"sdlab-bench-dashboards-{os.getpid()}"
SLUG = "bench-dashboards"
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 (bench accounts in a scratch database)
MEASURED = "bench-01"
IN_MEASURED = 0.9  # the share of learners enrolled in the measured tutorial
PASSED_WEIGHTS = (15, 20, 20, 15, 30)  # how many learners passed 0, 1, ... 4 steps
WRONG_ANSWERS = (0, 0, 0, 1, 1, 2, 3, 4)  # drawn for each quiz a learner reached
ACTIVE_NOW = 0.25  # learners whose last check passed minutes ago
LAB_RUNNING = 0.1  # learners in the measured tutorial whose lab is still running
BATCH = 2000
TARGET_MS = 200


# ------------------------------------------------------------------ scratch resources
def scratch_database_url() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sdlab")
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres")).replace("postgres://", "postgresql://", 1)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}")), admin


def database_recreate(admin_url: str, *, create: bool = True) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def environment(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_QUEUE": TAG,
        "CHANNELS_PREFIX": f"{TAG}:channels",
        "CACHE_KEY_PREFIX": TAG,
        "OTEL_TRACES_EXPORTER": "none",
    }


def redis_forget(redis_url: str) -> None:
    """Deletes this run's keys, if anything wrote any (the pages read no cache)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{TAG}*", count=500):
            client.delete(key)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# ------------------------------------------------------------------ tutorials
TUTORIAL_MD = """---
series: {series}
title: Bench tutorial {number}
level: intermediate
minutes: 30
summary: Watch the shop, break it, find the cause, fix it.
lab:
  scenarios: []
---
Four steps, each with checks the lab or a quiz passes.
"""
STEPS_MD = {
    "01-observe.md": """---
title: Observe the healthy shop
checks:
  - {id: healthy, type: metric, figure: users.success_ratio, op: '>=', value: 0.9,
     for_seconds: 5, message: The shop is healthy.}
  - id: meaning
    type: quiz
    points: 2
    question: What is p99?
    choices:
      - {text: The 99th percentile of latency, correct: true, explanation: Right.}
      - {text: The mean latency, explanation: 'No, that is the average.'}
hints:
  - {after_attempts: 1, text: Percentiles rank requests by latency.}
---
Look at the shop's figures.
""",
    "02-inject.md": """---
title: Slow the inventory down
depends_on: [observe]
checks:
  - {id: injected, type: scenario, slug: fixed-latency, enabled: true}
solution:
  - {action: scenario, slug: fixed-latency, enabled: true}
---
Turn the fault on.
""",
    "03-diagnose.md": """---
title: Find the slow dependency
depends_on: [inject]
checks:
  - {id: slow, type: metric, figure: inventory.p99_ms, op: '>', value: 300, for_seconds: 5}
  - id: which
    type: quiz
    points: 2
    question: Which service is slow?
    choices:
      - {text: inventory, correct: true, explanation: Its p99 rose first.}
      - {text: cache, explanation: Its latency did not move.}
      - {text: queue, explanation: Its depth did not move.}
---
Compare each service's p99.
""",
    "04-fix.md": """---
title: Fix it
depends_on: [diagnose]
checks:
  - {id: mitigated, type: mitigation, slug: longer-cache-ttl, enabled: true}
  - {id: recovered, type: metric, figure: users.success_ratio, op: '>=', value: 0.9,
     for_seconds: 5}
---
Put a mitigation in place and watch the shop recover.
""",
}


def tutorials_written(root: Path, count: int) -> list[TutorialContent]:
    """`count` copies of a four-step tutorial as files, spread over the series, read back
    (and so checked) as the platform's loader reads them."""
    from apps.tutorials.content import SERIES, tutorials_read

    series = list(SERIES)
    for n in range(1, count + 1):
        folder = root / f"bench-{n:02d}"
        folder.mkdir(parents=True)
        text = TUTORIAL_MD.format(series=series[(n - 1) % len(series)], number=n)
        (folder / "tutorial.md").write_text(text, encoding="utf-8")
        for name, step in STEPS_MD.items():
            (folder / name).write_text(step, encoding="utf-8")
    return tutorials_read(root)


# ------------------------------------------------------------------ people
def host() -> str:
    from django.conf import settings

    return f"{SLUG}.{settings.BASE_DOMAIN}"


def people(learners: int) -> tuple[Organisation, list[User], User]:
    from apps.accounts.models import Role
    from apps.accounts.services import membership_set, user_create
    from apps.tenants.models import Plan
    from apps.tenants.services import organisation_create

    # A plan with a seat for everyone (plans are reference data: no service).
    plan = Plan.objects.create(slug=SLUG, name="Bench dashboards", seats=learners + 10)
    organisation = organisation_create(name="Bench Dashboards", slug=SLUG, plan=plan)

    def member(role: str, n: int) -> User:
        user = user_create(
            email=f"{role}-{n:04d}@bench.test",
            password=PASSWORD,
            display_name=f"{role.capitalize()} {n}",
            email_verified=True,
        )
        membership_set(user=user, organisation=organisation, role=role)
        return user

    return (
        organisation,
        [member(Role.LEARNER, n) for n in range(learners)],
        member(Role.INSTRUCTOR, 0),
    )


# ------------------------------------------------------------------ progress
@dataclass(frozen=True)
class Progress:
    """How far one learner got in one tutorial."""

    passed: int  # steps passed, in order
    partial: int = 0  # checks passed in the open step after them
    wrong: dict[str, int] = field(default_factory=dict)  # quiz id -> wrong answers


@dataclass(frozen=True)
class Event:
    step: int  # index in the tutorial
    check: Check
    passed: bool  # else only wrong answers to a quiz


def timeline(tutorial: TutorialContent, progress: Progress) -> list[Event]:
    """What the learner did, in order: checks passed, then wrong answers so far."""
    events: list[Event] = []
    for index, step in enumerate(tutorial.steps[: progress.passed + 1]):
        done = step.checks if index < progress.passed else step.checks[: progress.partial]
        events.extend(Event(index, check, True) for check in done)
        if index == progress.passed:
            events.extend(
                Event(index, check, False)
                for check in step.checks[progress.partial :]
                if check.type == "quiz" and progress.wrong.get(check.id)
            )
    return events


def progress_drawn(rng: random.Random, tutorial: TutorialContent) -> Progress:
    steps = tutorial.steps
    passed = rng.choices(range(len(steps) + 1), weights=PASSED_WEIGHTS)[0]
    partial = rng.randrange(len(steps[passed].checks)) if passed < len(steps) else 0
    reached = [c for s in steps[: passed + 1] for c in s.checks if c.type == "quiz"]
    wrong = {c.id: n for c in reached if (n := rng.choice(WRONG_ANSWERS))}
    return Progress(passed, partial, wrong)


def points_for(check: Check, wrong: int) -> int:
    """As `services._points`: each wrong answer halves a quiz's points, never below one."""
    if check.points == 0:
        return 0
    return max(1, check.points >> min(wrong, 16))


@dataclass
class Written:
    enrolment: Enrolment
    steps: list[StepProgress]
    checks: list[CheckResult]


def rows_for(
    learner: User, tutorial: TutorialContent, progress: Progress, at: list[datetime]
) -> Written:
    """The rows the services would have written for `progress`, unsaved; `at` holds the
    enrolment's time, then one time per event of the timeline."""
    from apps.progress.models import (
        CheckResult,
        Enrolment,
        EnrolmentStatus,
        StepProgress,
        StepStatus,
    )

    steps = tutorial.steps
    enrolment = Enrolment(
        learner=learner,
        tutorial_slug=tutorial.slug,
        own=False,
        max_score=sum(c.points for s in steps for c in s.checks),
        enrolled_at=at[0],
        last_activity_at=at[0],
    )
    rows = [
        StepProgress(
            enrolment=enrolment,
            step_slug=step.slug,
            position=n,
            status=StepStatus.LOCKED if step.depends_on else StepStatus.OPEN,
            opened_at=None if step.depends_on else at[0],
        )
        for n, step in enumerate(steps, start=1)
    ]
    checks = []
    for event, when in zip(timeline(tutorial, progress), at[1:], strict=True):
        row, step, check = rows[event.step], steps[event.step], event.check
        wrong = progress.wrong.get(check.id, 0) if check.type == "quiz" else 0
        if wrong:
            row.attempts += wrong
            row.wrong_answers[check.id] = wrong
        if check.type == "quiz":
            row.last_activity_at = when
        if not event.passed:
            continue
        source = "quiz" if check.type == "quiz" else "telemetry"
        checks.append(
            CheckResult(
                enrolment=enrolment,
                step_slug=step.slug,
                check_id=check.id,
                points=points_for(check, wrong),
                max_points=check.points,
                source=source,
                passed_at=when,
            )
        )
        enrolment.score += checks[-1].points
        enrolment.last_activity_at = when
        if check is step.checks[-1]:
            row.status, row.passed_at, row.last_activity_at = StepStatus.PASSED, when, when
            row.score = sum(c.points for c in checks if c.step_slug == step.slug)
            passed = {s.slug for s, r in zip(steps, rows, strict=True) if r.passed_at}
            for later, later_row in zip(steps, rows, strict=True):
                unlocked = set(later.depends_on) <= passed
                if later_row.status == StepStatus.LOCKED and unlocked:
                    later_row.status, later_row.opened_at = StepStatus.OPEN, when
            if len(passed) == len(steps):
                enrolment.status, enrolment.completed_at = EnrolmentStatus.COMPLETED, when
    return Written(enrolment, rows, checks)


def times_drawn(rng: random.Random, events: int, now: datetime) -> list[datetime]:
    """The enrolment's time and one per event; the last a few minutes ago for some
    learners, hours or days ago for the others."""
    gaps = [rng.uniform(30, 900) for _ in range(events)]
    idle = rng.uniform(60, 600) if rng.random() < ACTIVE_NOW else rng.uniform(3600, 5 * 86400)
    at = [now - timedelta(seconds=idle + sum(gaps))]
    for gap in gaps:
        at.append(at[-1] + timedelta(seconds=gap))
    return at


# The progress of the few enrolments made through the services (and again in bulk).
SHOWN = (
    Progress(0, 0, {"meaning": 1}),
    Progress(1, 0, {"meaning": 2}),
    Progress(2, 1, {"meaning": 1, "which": 3}),
    Progress(4, 0, {"which": 1}),
)


def progress_through_services(
    learner: User, tutorial: TutorialContent, progress: Progress
) -> Enrolment:
    from apps.progress.services import check_result_record, enrolment_create, quiz_answer_submit

    enrolment = enrolment_create(learner=learner, slug=tutorial.slug)
    for event in timeline(tutorial, progress):
        step, check = tutorial.steps[event.step].slug, event.check
        if check.type != "quiz":
            check_result_record(enrolment_id=enrolment.pk, step_slug=step, check_id=check.id)
            continue
        choices = check.spec["choices"]
        right = next(n for n, c in enumerate(choices) if c["correct"])
        answers = [(right + 1) % len(choices)] * progress.wrong.get(check.id, 0)
        for chosen in [*answers, *([right] if event.passed else [])]:
            quiz_answer_submit(
                learner=learner,
                enrolment_id=enrolment.pk,
                step_slug=step,
                check_id=check.id,
                chosen=[chosen],
            )
    return enrolment


def shape(enrolment_id: int) -> tuple:
    """An enrolment's rows without their ids, learner and times (only whether set)."""
    from apps.progress.models import CheckResult, Enrolment, StepProgress

    e = Enrolment.objects.get(pk=enrolment_id)
    steps = StepProgress.objects.filter(enrolment_id=enrolment_id).order_by("position")
    checks = CheckResult.objects.filter(enrolment_id=enrolment_id).order_by("step_slug", "check_id")
    return (
        (e.tutorial_slug, e.own, e.status, e.score, e.max_score, e.completed_at is None),
        [
            (
                s.step_slug,
                s.position,
                s.status,
                s.attempts,
                s.wrong_answers,
                s.score,
                s.opened_at is None,
                s.passed_at is None,
                s.last_activity_at is None,
            )
            for s in steps
        ],
        [(c.step_slug, c.check_id, c.points, c.max_points, c.source) for c in checks],
    )


def lab_for(written: Written, title: str, running: bool) -> LabSession:
    """The tutorial's lab, as `tutorial_lab_start` left it: stopped after the last
    check, or still running."""
    from apps.scenarios.models import LabSession, LabSessionState

    started = written.enrolment.enrolled_at + timedelta(seconds=5)
    return LabSession(
        learner=written.enrolment.learner,
        scenario_set=f"tutorial: {title}"[:100],
        state=LabSessionState.RUNNING if running else LabSessionState.STOPPED,
        backend="local",
        started_at=started,
        ready_at=started + timedelta(seconds=2),
        expires_at=started + timedelta(hours=1),
        ended_at=None if running else written.enrolment.last_activity_at + timedelta(minutes=1),
    )


@dataclass
class Counts:
    enrolments: int = 0
    steps: int = 0
    checks: int = 0
    labs: int = 0
    shape_mismatches: list[str] = field(default_factory=list)


def progress_written(
    rng: random.Random,
    learners: list[User],
    tutorials: list[TutorialContent],
    per_learner: int,
) -> Counts:
    """The few enrolments through the services, the rest in bulk; then the service-made
    ones compared with bulk rows of the same progress."""
    from django.db import transaction
    from django.utils import timezone

    from apps.progress.models import CheckResult, Enrolment, StepProgress
    from apps.scenarios.models import LabSession

    by_slug = {t.slug: t for t in tutorials}
    measured = by_slug[MEASURED]
    made = [
        progress_through_services(learner, measured, progress)
        for learner, progress in zip(learners, SHOWN, strict=False)
    ]
    again = dict(zip(learners[len(SHOWN) :], SHOWN, strict=False))  # same progress, in bulk
    now = timezone.now()
    written, labs = [], []
    others = [t.slug for t in tutorials if t.slug != MEASURED]
    for n, learner in enumerate(learners):
        if n < len(made) or learner in again or rng.random() < IN_MEASURED:
            slugs = [MEASURED, *rng.sample(others, per_learner - 1)]
        else:
            slugs = rng.sample(others, per_learner)
        running = rng.random() < LAB_RUNNING
        for slug in slugs:
            if n < len(made) and slug == MEASURED:
                continue
            tutorial = by_slug[slug]
            progress = again.get(learner) if slug == MEASURED else None
            progress = progress or progress_drawn(rng, tutorial)
            at = times_drawn(rng, len(timeline(tutorial, progress)), now)
            rows = rows_for(learner, tutorial, progress, at)
            written.append(rows)
            if learner not in again and rows.checks:  # a check passed: the lab was started
                completed = rows.enrolment.completed_at is not None
                lab = lab_for(rows, tutorial.title, running and slug == MEASURED and not completed)
                rows.enrolment.lab_session = lab
                labs.append(lab)
    with transaction.atomic():
        LabSession.objects.bulk_create(labs, batch_size=BATCH)
        enrolments = [w.enrolment for w in written]
        times = [(e.enrolled_at, e.last_activity_at) for e in enrolments]
        Enrolment.objects.bulk_create(enrolments, batch_size=BATCH)
        # enrolled_at and last_activity_at are auto_now_add: bulk_create set them to now.
        for enrolment, (enrolled_at, last_activity_at) in zip(enrolments, times, strict=True):
            enrolment.enrolled_at, enrolment.last_activity_at = enrolled_at, last_activity_at
        Enrolment.objects.bulk_update(
            enrolments, ["enrolled_at", "last_activity_at"], batch_size=BATCH
        )
        StepProgress.objects.bulk_create([s for w in written for s in w.steps], batch_size=BATCH)
        CheckResult.objects.bulk_create([c for w in written for c in w.checks], batch_size=BATCH)
    counts = Counts(
        enrolments=Enrolment.objects.count(),
        steps=StepProgress.objects.count(),
        checks=CheckResult.objects.count(),
        labs=LabSession.objects.count(),
    )
    twins = {e.learner: e for e in enrolments if e.learner in again and e.tutorial_slug == MEASURED}
    for service_made, twin in zip(made, learners[len(SHOWN) :], strict=False):
        ours, theirs = shape(service_made.pk), shape(twins[twin].pk)
        if ours != theirs:
            counts.shape_mismatches.append(f"services {ours}\n    bulk     {theirs}")
    return counts


# ------------------------------------------------------------------ cohorts
def cohort_made(
    organisation: Organisation, instructor: User, name: str, members: list[User]
) -> Cohort:
    from apps.progress.teaching import assignment_create, cohort_create, cohort_members_add

    cohort = cohort_create(organisation=organisation, actor=instructor, name=name)
    cohort_members_add(
        organisation=organisation,
        actor=instructor,
        cohort_id=cohort.pk,
        emails=[m.email for m in members],
    )
    for slug in (MEASURED, "bench-02", "bench-03"):
        assignment_create(
            organisation=organisation,
            actor=instructor,
            cohort_id=cohort.pk,
            tutorial_slug=slug,
            due_at=None,
        )
    return cohort


# ------------------------------------------------------------------ measuring
@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # this process's: Python's part
    sql_seconds: list[float] = field(default_factory=list)  # as the ORM saw each query
    queries: list[int] = field(default_factory=list)
    search_paths: int = 0  # of the queries, django-tenants' SET search_path
    repeated: tuple[int, str] = (0, "")  # the query run most often: how often, on which table

    def line(self) -> str:
        counts = sorted(set(self.queries))
        queries = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        alike, table = self.repeated
        return (
            f"median {ms(statistics.median(self.seconds))}, "
            f"p95 {ms(percentile(self.seconds, 0.95))} "
            f"(CPU {ms(statistics.median(self.cpu_seconds))}, "
            f"SQL {ms(statistics.median(self.sql_seconds))}); {queries} queries "
            f"({self.search_paths} SET search_path"
            f"{f', {alike} alike on {table}' if alike > 2 else ''})"
        )


def timed(call: Callable[[], object], repeats: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()  # untimed: imports, template loading, the first connection
    timing = Timing()
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            began, cpu = time.perf_counter(), time.process_time()
            call()
            timing.seconds.append(time.perf_counter() - began)
            timing.cpu_seconds.append(time.process_time() - cpu)
        timing.queries.append(len(captured))
        timing.sql_seconds.append(sum(float(q["time"]) for q in captured.captured_queries))
    statements = [q["sql"] for q in captured.captured_queries]
    timing.search_paths = sum(1 for sql in statements if sql.startswith("SET search_path"))
    shapes = Counter(re.sub(r"\d+", "N", sql) for sql in statements if not sql.startswith("SET "))
    if shapes:
        sql, alike = shapes.most_common(1)[0]
        table = re.search(r'FROM "(\w+)"', sql)
        timing.repeated = (alike, table[1] if table else sql[:40])
    return timing


def report_call(organisation: Organisation, cohort: Cohort) -> Callable[[], CohortReport]:
    from django_tenants.utils import tenant_context

    from apps.progress.reports import cohort_report

    def call() -> CohortReport:
        with tenant_context(organisation):
            report = cohort_report(cohort=cohort, tutorial_slug=MEASURED)
        if report is None:
            raise RuntimeError(f"no report for {MEASURED}")
        return report

    return call


def page_call(client: Client, url: str) -> Callable[[], object]:
    def call() -> object:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        return response

    return call


def measure(
    organisation: Organisation, instructor: User, cohorts: dict[int, Cohort], repeats: int
) -> None:
    from django.test import Client
    from django.urls import reverse

    client = Client(HTTP_HOST=host())
    client.force_login(instructor)
    urls = {
        size: (
            reverse("cohort-progress", args=[cohort.pk, MEASURED]),
            reverse("cohort-progress-matrix", args=[cohort.pk, MEASURED]),
        )
        for size, cohort in cohorts.items()
    }
    small, big = sorted(cohorts)
    report = report_call(organisation, cohorts[big])()
    print(
        f"cohort of {big} learners on {MEASURED}: {report.enrolled} enrolled, "
        f"{report.completed} completed, {len(report.stuck)} stuck; "
        f"{repeats} runs each, server time in this process:",
        flush=True,
    )
    kinds: list[tuple[str, Callable[[int], Callable[[], object]]]] = [
        (
            "report (cohort_report: matrix + funnel)",
            lambda n: report_call(organisation, cohorts[n]),
        ),
        (f"page GET {urls[big][0]}", lambda n: page_call(client, urls[n][0])),
        (f"matrix fragment GET {urls[big][1]}", lambda n: page_call(client, urls[n][1])),
    ]
    for label, call_for in kinds:
        at_big = timed(call_for(big), repeats)
        at_small = timed(call_for(small), max(3, repeats // 4))
        flat = set(at_small.queries) == set(at_big.queries) and len(set(at_big.queries)) == 1
        print(
            f"  {label}: {at_big.line()}  (target < {TARGET_MS} ms; query count "
            f"{'flat' if flat else 'NOT flat'}: {max(at_small.queries)} at {small} learners, "
            f"{max(at_big.queries)} at {big})",
            flush=True,
        )
        print(f"    at {small} learners: {at_small.line()}", flush=True)
    print(
        f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )


# ------------------------------------------------------------------ the run
def run(args: argparse.Namespace, folder: Path) -> None:
    from django.conf import settings
    from django_tenants.utils import schema_context, tenant_context

    from apps.tutorials.services import tutorials_store

    # Bench accounts only: the default hasher would spend a minute on 500 passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    began = time.perf_counter()
    tutorials = tutorials_written(folder, args.tutorials)
    with schema_context("public"):
        tutorials_store(tutorials=tutorials)
    organisation, learners, instructor = people(args.learners)
    rng = random.Random(args.seed)  # noqa: S311 (made-up progress, the same every run)
    with tenant_context(organisation):
        counts = progress_written(rng, learners, tutorials, args.per_learner)
        cohorts = {
            size: cohort_made(organisation, instructor, f"Bench {size}", learners[:size])
            for size in sorted({args.small, args.learners})
        }
    print(
        f"{args.tutorials} platform tutorials of {len(tutorials[0].steps)} steps, "
        f"{args.learners} learners in {args.per_learner} each: {counts.enrolments:,} "
        f"enrolments, {counts.steps:,} step rows, {counts.checks:,} check results, "
        f"{counts.labs:,} lab sessions (set up in {time.perf_counter() - began:.0f} s)",
        flush=True,
    )
    if counts.shape_mismatches:
        print("bulk rows differ from the services' rows:", *counts.shape_mismatches, sep="\n  ")
    else:
        print(
            f"rows: {len(SHOWN)} enrolments made through the services match bulk-written "
            "ones of the same progress",
            flush=True,
        )
    measure(organisation, instructor, cohorts, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=500)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--tutorials", type=int, default=24)
    parser.add_argument("--per-learner", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/6"
    )
    args = parser.parse_args()
    if not 2 * len(SHOWN) <= args.small < args.learners:
        parser.error(f"--small must be from {2 * len(SHOWN)} to below --learners")
    if not 1 <= args.per_learner <= args.tutorials or args.tutorials < 3:
        parser.error("--per-learner must be from 1 to --tutorials, and --tutorials at least 3")
    database_url, admin_url = scratch_database_url()
    folder = Path(tempfile.mkdtemp(prefix="sdlab-bench-tutorials-", dir="/tmp"))
    database_recreate(admin_url)
    os.environ.update(environment(database_url, args.redis_url))
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate_schemas", "--noinput", "-v", "0"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        import django

        django.setup()
        run(args, folder)
    finally:
        with contextlib.suppress(ImportError):
            from django.db import connections

            connections.close_all()
        database_recreate(admin_url, create=False)
        redis_forget(args.redis_url)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
