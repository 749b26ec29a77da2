"""A learner's own progress over time, without waiting for the clock: a timed hint appears
once its time on the step has passed (the step's start moved back, as time would); time on
task adds up each step from opening to passing; the dashboard shows what is assigned,
with its due date, soonest first, and what is overdue."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db.models import F
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.models import Assignment, StepProgress
from apps.progress.selectors import hints_visible, learner_dashboard, next_hint_in
from apps.progress.services import check_result_record, enrolment_create, quiz_answer_submit
from apps.progress.teaching import assignment_create, cohort_create, cohort_members_add
from apps.tenants.models import Organisation
from apps.tutorials.content import tutorial_read
from apps.tutorials.models import Step
from apps.tutorials.services import tutorials_store
from tests.conftest import make_member
from tests.progress.conftest import TUTORIAL, tutorial_write

TIMED = "Look at the latency chart."  # the test tutorial's hint after 3600 s on "observe"
AFTER_ONE_WRONG = "Percentiles rank requests by latency."


def _step_started_ago(enrolment_id: int, step: str, seconds: float) -> None:
    # The clock moved on: the step opened this much earlier than it did.
    StepProgress.objects.filter(enrolment_id=enrolment_id, step_slug=step).update(
        opened_at=F("opened_at") - timedelta(seconds=seconds)
    )


def test_a_timed_hint_is_due_exactly_when_its_time_on_the_step_has_passed(org_a, own_tutorial):
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        enrolment = enrolment_create(learner=learner, slug=slug)
        hints = Step.objects.get(tutorial__slug=slug, slug="observe").hints
        progress = StepProgress.objects.get(enrolment=enrolment, step_slug="observe")
        opened = progress.opened_at
        assert opened is not None

        def at(seconds: float) -> datetime:
            return opened + timedelta(seconds=seconds)

        assert hints_visible(hints, progress, at(0)) == []
        assert next_hint_in(hints, progress, at(0)) == 3600
        assert hints_visible(hints, progress, at(3599.5)) == []
        assert next_hint_in(hints, progress, at(3599.5)) == 1  # never sooner than a second
        assert hints_visible(hints, progress, at(3600)) == [TIMED]
        assert next_hint_in(hints, progress, at(3600)) is None  # no timed hint left to wait for

        quiz_answer_submit(
            learner=learner,
            enrolment_id=enrolment.pk,
            step_slug="observe",
            check_id="meaning",
            chosen=[1],
        )
        progress.refresh_from_db()
        assert hints_visible(hints, progress, at(0)) == [AFTER_ONE_WRONG]
        assert hints_visible(hints, progress, at(7200)) == [AFTER_ONE_WRONG, TIMED]

        # A step that is passed, or not open yet, earns no hint however long it has been.
        for check_id in ("healthy", "meaning"):
            check_result_record(enrolment_id=enrolment.pk, step_slug="observe", check_id=check_id)
        progress.refresh_from_db()
        assert hints_visible(hints, progress, at(7200)) == []
        assert next_hint_in(hints, progress, at(0)) is None


def test_the_guide_shows_the_timed_hint_once_the_step_has_been_open_long_enough(
    org_a, own_tutorial, site_client
):
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    client = site_client(org_a, learner)
    client.post(f"/learn/{slug}/enrol/")
    before = client.get(f"/learn/{slug}/guide/").content.decode()
    assert TIMED not in before
    assert 'data-testid="hint"' not in before
    assert "load delay:" in before  # the guide asks again when the hint is due

    with tenant_context(org_a):
        enrolment_id = StepProgress.objects.get(
            enrolment__learner=learner, step_slug="observe"
        ).enrolment_id
    _in_schema(org_a, _step_started_ago, enrolment_id, "observe", 3000)
    still = client.get(f"/learn/{slug}/guide/").content.decode()
    assert TIMED not in still  # 50 minutes are not an hour

    _in_schema(org_a, _step_started_ago, enrolment_id, "observe", 601)
    after = client.get(f"/learn/{slug}/guide/").content.decode()
    assert after.count('data-testid="hint"') == 1
    assert f"<strong>Hint:</strong> {TIMED}" in after
    assert "load delay:" not in after  # nothing left to wait for
    # The full page shows it too, and the step it belongs to is still open.
    page = client.get(f"/learn/{slug}/").content.decode()
    assert TIMED in page
    assert 'data-step="observe" data-status="open"' in page


def _in_schema(organisation: Organisation, work: Callable[..., None], *args: object) -> None:
    with tenant_context(organisation):
        work(*args)


def test_time_on_task_adds_each_step_from_opening_to_passing(org_a, own_tutorial, site_client):
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        enrolment = enrolment_create(learner=learner, slug=slug)
        opened = enrolment.steps.get(step_slug="observe").opened_at
        assert opened is not None
        check_result_record(
            enrolment_id=enrolment.pk,
            step_slug="observe",
            check_id="healthy",
            at=opened + timedelta(seconds=100),
        )
        check_result_record(
            enrolment_id=enrolment.pk,
            step_slug="observe",
            check_id="meaning",
            source="quiz",
            at=opened + timedelta(seconds=300),
        )
        steps = {p.step_slug: p for p in StepProgress.objects.filter(enrolment=enrolment)}
        assert steps["observe"].seconds_on_task == 300
        assert steps["fix"].opened_at == opened + timedelta(seconds=300)  # opened as observe passed
        assert steps["fix"].seconds_on_task is None  # not passed yet
        board = learner_dashboard(learner=learner)
        assert [(i.slug, i.minutes_on_task, i.steps_passed) for i in board.resume] == [(slug, 5, 1)]
    client = site_client(org_a, learner)
    assert "1 of 2 steps · score 3 of 5 · 5 min on task" in client.get("/learn/").content.decode()

    with tenant_context(org_a):
        for check_id, after in (("broken", 200), ("fixed", 420)):
            check_result_record(
                enrolment_id=enrolment.pk,
                step_slug="fix",
                check_id=check_id,
                at=opened + timedelta(seconds=300 + after),
            )
        assert StepProgress.objects.get(enrolment=enrolment, step_slug="fix").seconds_on_task == 420
        board = learner_dashboard(learner=learner)
        assert board.resume == []
        assert [(i.slug, i.minutes_on_task) for i in board.completed] == [(slug, 12)]
    done = client.get("/learn/").content.decode()
    assert 'data-testid="completed-list"' in done
    assert "score 5 of 5 · 12 min on task" in done


SIDE_BY_SIDE = {
    "tutorial.md": (
        "---\nseries: observability\ntitle: Two at once\nlevel: beginner\nminutes: 10\n"
        "lab:\n  scenarios: []\n---\nTwo steps, open together.\n"
    ),
    "01-left.md": (
        "---\ntitle: Left\nchecks:\n  - {id: seen, type: scenario, slug: fixed-latency,"
        " enabled: true}\n---\nLeft.\n"
    ),
    "02-right.md": (
        "---\ntitle: Right\nchecks:\n  - {id: seen, type: scenario, slug: fixed-latency,"
        " enabled: true}\n---\nRight.\n"
    ),
}


def test_steps_open_side_by_side_count_their_shared_time_once(org_a, tmp_path):
    """Two steps that depend on nothing open together; ten minutes spent on both are ten
    minutes on task, not twenty."""
    with tenant_context(org_a):
        tutorials_store(tutorials=[tutorial_read(tutorial_write(tmp_path / "two", SIDE_BY_SIDE))])
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        enrolment = enrolment_create(learner=learner, slug="two")
        opened = enrolment.steps.get(step_slug="left").opened_at
        assert opened is not None
        assert enrolment.steps.get(step_slug="right").opened_at == opened
        for step, after in (("left", 240), ("right", 600)):
            check_result_record(
                enrolment_id=enrolment.pk,
                step_slug=step,
                check_id="seen",
                at=opened + timedelta(seconds=after),
            )
        board = learner_dashboard(learner=learner)
    assert [(i.slug, i.minutes_on_task) for i in board.completed] == [("two", 10)]


def _store(tmp_path: Path, organisation: Organisation, slug: str, title: str) -> None:
    files = dict(TUTORIAL)
    files["tutorial.md"] = files["tutorial.md"].replace("title: Watch and fix", f"title: {title}")
    with tenant_context(organisation):
        tutorials_store(tutorials=[tutorial_read(tutorial_write(tmp_path / slug, files))])


def _shown(due: datetime) -> str:
    """How the dashboard writes a due date: `<time datetime=ISO>j M Y, H:i</time>`."""
    local = timezone.localtime(due)
    return f'<time datetime="{local.isoformat()}">{local.day} {local:%b %Y, %H:%M}</time>'


def test_the_dashboard_shows_assigned_work_with_due_dates_soonest_first(
    org_a, tmp_path, site_client
):
    for slug, title in (
        ("later", "Due later"),
        ("sooner", "Due sooner"),
        ("whenever", "No due date"),
        ("finished", "Already done"),
    ):
        _store(tmp_path, org_a, slug, title)
    owner = make_member(org_a, Role.OWNER)
    learner = make_member(org_a, Role.LEARNER)
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    sooner, later = now + timedelta(days=3), now + timedelta(days=10)
    with tenant_context(org_a):
        spring = cohort_create(organisation=org_a, actor=owner, name="Spring")
        evening = cohort_create(organisation=org_a, actor=owner, name="Evening")
        for cohort in (spring, evening):
            cohort_members_add(
                organisation=org_a, actor=owner, cohort_id=cohort.pk, emails=[learner.email]
            )
        for cohort, slug, due in (
            (spring, "later", later),
            (evening, "sooner", sooner),
            (spring, "whenever", None),
            (evening, "finished", sooner),
        ):
            assignment_create(
                organisation=org_a, actor=owner, cohort_id=cohort.pk, tutorial_slug=slug, due_at=due
            )
        finished = enrolment_create(learner=learner, slug="finished")
        for step, check_id in (
            ("observe", "healthy"),
            ("observe", "meaning"),
            ("fix", "broken"),
            ("fix", "fixed"),
        ):
            check_result_record(enrolment_id=finished.pk, step_slug=step, check_id=check_id)
        enrolment_create(learner=learner, slug="later")

        board = learner_dashboard(learner=learner)
        assert [(i.slug, i.due_at, i.cohort, i.overdue) for i in board.assigned] == [
            ("sooner", sooner, "Evening", False),
            ("later", later, "Spring", False),
            ("whenever", None, "Spring", False),
        ]  # done work leaves the list

    client = site_client(org_a, learner)
    page = client.get("/learn/").content.decode()
    assigned = page.split('data-testid="assigned"', 1)[1].split("</table>", 1)[0]
    rows = assigned.split("<tr>")[2:]  # after the header
    assert len(rows) == 3
    assert "Due sooner" in rows[0]
    assert _shown(sooner) in rows[0]
    assert "not started" in rows[0]
    assert "Due later" in rows[1]
    assert _shown(later) in rows[1]
    assert "0 of 2 steps" in rows[1]
    assert "No due date" in rows[2]
    assert "no due date" in rows[2]
    assert "overdue" not in assigned

    # Time passes beyond a due date: that assignment is overdue, the others are not.
    with tenant_context(org_a):
        Assignment.objects.filter(tutorial_slug="sooner").update(due_at=now - timedelta(hours=1))
    page = client.get("/learn/").content.decode()
    assigned = page.split('data-testid="assigned"', 1)[1].split("</table>", 1)[0]
    rows = assigned.split("<tr>")[2:]
    assert "Due sooner" in rows[0]
    assert '<span class="badge error">overdue</span>' in rows[0]
    assert all("overdue" not in row for row in rows[1:])
