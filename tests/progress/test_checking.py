"""Progress from the sandbox's frames and the learner's answers: checks pass when their
condition has held long enough, are recorded once whoever reports them, open the steps
that depend on them, and complete the tutorial; a wrong answer costs points and may show
a hint; nobody records progress on someone else's enrolment."""

import threading
import time

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.models import CheckResult, Enrolment, StepProgress
from apps.progress.services import (
    NotFound,
    check_result_record,
    enrolment_create,
    enrolment_steps_sync,
    quiz_answer_submit,
)
from apps.progress.watch import frame_check, plans_forget
from apps.scenarios.services import lab_session_start
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tutorials.content import tutorial_read
from apps.tutorials.models import Tutorial
from apps.tutorials.services import tutorials_store
from tests.conftest import make_member
from tests.progress.conftest import TUTORIAL, tutorial_write

pytestmark = pytest.mark.xdist_group("progress")


def frame(at: float, ratio: float = 0.99, scenarios=None, mitigations=None) -> dict:
    return {
        "type": "frame",
        "at": at,
        "figures": {"users.success_ratio": ratio},
        "scenarios": scenarios or {},
        "mitigations": mitigations or {},
        "events": [],
    }


def statuses(enrolment: Enrolment) -> dict[str, str]:
    return dict(StepProgress.objects.filter(enrolment=enrolment).values_list("step_slug", "status"))


def test_frames_and_answers_carry_a_learner_through_a_tutorial(
    committed_organisations, own_tutorial
):
    organisation = committed_organisations("Checked")
    slug = own_tutorial(organisation)
    learner = make_member(organisation, Role.LEARNER)
    schema = organisation.schema_name
    plans_forget()
    with tenant_context(organisation):
        enrolment = enrolment_create(learner=learner, slug=slug)
        assert enrolment_create(learner=learner, slug=slug).pk == enrolment.pk
        assert statuses(enrolment) == {"observe": "open", "fix": "locked"}
        assert enrolment.max_score == 1 + 2 + 1 + 1
        session = lab_session_start(organisation=organisation, learner=learner, scenario_set="t")
        Enrolment.objects.filter(pk=enrolment.pk).update(lab_session=session)

    now = time.time()
    # Unhealthy, then healthy for less than the 2 s the check needs: nothing yet.
    assert frame_check(schema, session.pk, frame(now, ratio=0.5)) == []
    assert frame_check(schema, session.pk, frame(now + 1)) == []
    assert frame_check(schema, session.pk, frame(now + 2)) == []
    # A dip resets the clock.
    assert frame_check(schema, session.pk, frame(now + 2.5, ratio=0.5)) == []
    assert frame_check(schema, session.pk, frame(now + 3)) == []
    assert frame_check(schema, session.pk, frame(now + 5)) == ["observe/healthy"]
    # Reported again (another relay's next tick): recorded once.
    assert frame_check(schema, session.pk, frame(now + 6)) == []
    with tenant_context(organisation):
        again = check_result_record(
            enrolment_id=enrolment.pk, step_slug="observe", check_id="healthy"
        )
        assert again.created is False

    with tenant_context(organisation):
        assert statuses(enrolment) == {"observe": "open", "fix": "locked"}
        # The second step is locked: its checks cannot be recorded yet.
        with pytest.raises(Conflict):
            check_result_record(enrolment_id=enrolment.pk, step_slug="fix", check_id="broken")
        with pytest.raises(ValidationFailed):
            quiz_answer_submit(
                learner=learner,
                enrolment_id=enrolment.pk,
                step_slug="observe",
                check_id="meaning",
                chosen=[7],
            )
        wrong = quiz_answer_submit(
            learner=learner,
            enrolment_id=enrolment.pk,
            step_slug="observe",
            check_id="meaning",
            chosen=[1],
        )
        assert wrong.right is False
        assert wrong.explanations == ["No, that is the average."]
        assert StepProgress.objects.get(enrolment=enrolment, step_slug="observe").attempts == 1
        right = quiz_answer_submit(
            learner=learner,
            enrolment_id=enrolment.pk,
            step_slug="observe",
            check_id="meaning",
            chosen=[0],
        )
        assert right.right is True
        assert right.recorded is not None
        assert right.recorded.step_passed
        # One wrong answer first: half of the quiz's two points.
        assert CheckResult.objects.get(enrolment=enrolment, check_id="meaning").points == 1
        assert statuses(enrolment) == {"observe": "passed", "fix": "open"}

    # The newly open step is checked from the next frame on.
    assert frame_check(schema, session.pk, frame(now + 7, scenarios={"fixed-latency": {}})) == [
        "fix/broken"
    ]
    assert frame_check(
        schema,
        session.pk,
        frame(now + 8, scenarios={"fixed-latency": {}}, mitigations={"longer-cache-ttl": {}}),
    ) == ["fix/fixed"]
    with tenant_context(organisation):
        done = Enrolment.objects.get(pk=enrolment.pk)
        assert done.status == "completed"
        assert done.completed_at is not None
        assert done.score == 1 + 1 + 1 + 1


def test_nobody_answers_for_someone_else(committed_organisations, own_tutorial):
    organisation = committed_organisations("Mine")
    other = committed_organisations("Theirs")
    slug = own_tutorial(organisation)
    learner = make_member(organisation, Role.LEARNER)
    classmate = make_member(organisation, Role.LEARNER)
    with tenant_context(organisation):
        enrolment = enrolment_create(learner=learner, slug=slug)
        with pytest.raises(NotFound):
            quiz_answer_submit(
                learner=classmate,
                enrolment_id=enrolment.pk,
                step_slug="observe",
                check_id="meaning",
                chosen=[0],
            )
        with pytest.raises(NotFound):
            enrolment_create(learner=learner, slug="no-such-tutorial")
    with tenant_context(other):
        # The enrolment's id means nothing in another organisation's schema.
        with pytest.raises(NotFound):
            quiz_answer_submit(
                learner=learner,
                enrolment_id=enrolment.pk,
                step_slug="observe",
                check_id="meaning",
                chosen=[0],
            )
        with pytest.raises(NotFound):
            enrolment_create(learner=learner, slug=slug)  # that tutorial is not theirs


def test_a_gap_in_the_frames_starts_every_hold_again(committed_organisations, own_tutorial):
    organisation = committed_organisations("Gappy")
    slug = own_tutorial(organisation)
    learner = make_member(organisation, Role.LEARNER)
    plans_forget()
    with tenant_context(organisation):
        enrolment = enrolment_create(learner=learner, slug=slug)
        session = lab_session_start(organisation=organisation, learner=learner, scenario_set="t")
        Enrolment.objects.filter(pk=enrolment.pk).update(lab_session=session)
    schema, now = organisation.schema_name, time.time()
    assert frame_check(schema, session.pk, frame(now)) == []
    # Healthy before the lab went quiet for ten seconds, healthy after: not held for 2 s.
    assert frame_check(schema, session.pk, frame(now + 10)) == []
    assert frame_check(schema, session.pk, frame(now + 11)) == []
    assert frame_check(schema, session.pk, frame(now + 12)) == ["observe/healthy"]


def test_two_reports_of_one_check_at_once_record_it_once(committed_organisations, own_tutorial):
    organisation = committed_organisations("Racing")
    slug = own_tutorial(organisation)
    learner = make_member(organisation, Role.LEARNER)
    with tenant_context(organisation):
        enrolment = enrolment_create(learner=learner, slug=slug)
    start = threading.Barrier(4)
    outcomes = []

    def report() -> None:
        start.wait(timeout=10)
        try:
            with tenant_context(organisation):
                outcomes.append(
                    check_result_record(
                        enrolment_id=enrolment.pk, step_slug="observe", check_id="healthy"
                    ).created
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [False, False, False, True]
    with tenant_context(organisation):
        assert CheckResult.objects.filter(enrolment=enrolment).count() == 1
        assert Enrolment.objects.get(pk=enrolment.pk).score == 1


def test_progress_follows_a_tutorial_edited_or_deleted_after_enrolling(
    committed_organisations, own_tutorial, tmp_path
):
    organisation = committed_organisations("Edited")
    slug = own_tutorial(organisation)
    learner = make_member(organisation, Role.LEARNER)
    with tenant_context(organisation):
        enrolment = enrolment_create(learner=learner, slug=slug)
        session = lab_session_start(organisation=organisation, learner=learner, scenario_set="t")
        Enrolment.objects.filter(pk=enrolment.pk).update(lab_session=session)
        files = dict(TUTORIAL)
        files["03-verify.md"] = (
            "---\ntitle: Verify\ndepends_on: [fix]\nchecks:\n"
            "  - {id: calm, type: scenario, slug: fixed-latency, enabled: false}\n---\nCheck.\n"
        )
        tutorials_store(tutorials=[tutorial_read(tutorial_write(tmp_path / slug, files))])
        assert enrolment_steps_sync(enrolment=Enrolment.objects.get(pk=enrolment.pk))
        assert statuses(enrolment) == {"observe": "open", "fix": "locked", "verify": "locked"}
        assert Enrolment.objects.get(pk=enrolment.pk).max_score == 6
        assert not enrolment_steps_sync(enrolment=Enrolment.objects.get(pk=enrolment.pk))
        Tutorial.objects.filter(slug=slug).delete()
    plans_forget()
    # The watcher shrugs at a deleted tutorial: nothing to check, no error.
    assert frame_check(organisation.schema_name, session.pk, frame(time.time())) == []
