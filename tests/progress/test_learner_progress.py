"""A learner's own progress over time, without waiting for the clock: a timed hint appears
once its time on the step has passed (the step's start moved back, as time would)."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import F
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.models import StepProgress
from apps.progress.selectors import hints_visible, next_hint_in
from apps.progress.services import check_result_record, enrolment_create, quiz_answer_submit
from apps.tenants.models import Organisation
from apps.tutorials.models import Step
from tests.conftest import make_member

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
