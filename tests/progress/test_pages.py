"""The learner's and the instructor's pages through real requests: enrolling, the guide
with its quizzes and hints, the dashboard; cohorts, members, assignments, the progress
matrix, funnel and CSV; bad input answered on the page; each organisation sees its own."""

import csv
import io
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.models import Cohort, Enrolment
from apps.progress.reports import cohort_report
from apps.progress.services import enrolment_create, quiz_answer_submit
from apps.progress.teaching import assignment_create, cohort_create, cohort_members_add
from tests.conftest import make_member


def test_a_learner_enrols_answers_earns_a_hint_and_sees_the_dashboard(
    org_a, own_tutorial, site_client
):
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    client = site_client(org_a, learner)
    empty = client.get("/learn/").content.decode()
    assert 'data-testid="resume-empty"' in empty
    assert client.get(f"/learn/{slug}/")["Location"] == f"/tutorials/{slug}/"

    response = client.post(f"/learn/{slug}/enrol/")
    assert response["Location"] == f"/learn/{slug}/"
    page = client.get(f"/learn/{slug}/").content.decode()
    assert page.count('data-testid="guide-step"') == 2
    assert 'data-status="locked"' in page
    assert 'data-testid="start-lab"' in page
    assert "correct" not in page  # which answer is right never reaches the page
    assert 'data-testid="hint"' not in page

    no_choice = client.post(
        f"/learn/{slug}/answer/", {"step": "observe", "check": "meaning"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Choose one of the answers" in no_choice
    wrong = client.post(
        f"/learn/{slug}/answer/",
        {"step": "observe", "check": "meaning", "choice": "1"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Not quite" in wrong
    assert "No, that is the average." in wrong
    assert "Percentiles rank requests by latency." in wrong  # the hint after one wrong answer
    assert "Look at the latency chart." not in wrong  # that one waits an hour
    # Without JavaScript: a redirect, and the explanation on the page that follows.
    right = client.post(
        f"/learn/{slug}/answer/", {"step": "observe", "check": "meaning", "choice": "0"}
    )
    assert right.status_code == 302
    after = client.get(f"/learn/{slug}/").content.decode()
    assert "Right." in after
    assert "1 of 2 points" in after
    assert (
        client.post(
            f"/learn/{slug}/answer/", {"step": "nope", "check": "meaning", "choice": "0"}
        ).status_code
        == 404
    )

    board = client.get("/learn/").content.decode()
    assert 'data-testid="resume"' in board
    assert "Watch and fix" in board


def test_someone_elses_enrolment_and_another_organisations_tutorial_are_out_of_reach(
    org_a, org_b, own_tutorial, site_client
):
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        enrolment_create(learner=learner, slug=slug)
    classmate = site_client(org_a, make_member(org_a, Role.LEARNER))
    # The classmate is not enrolled: answering posts to nobody's enrolment.
    assert (
        classmate.post(
            f"/learn/{slug}/answer/", {"step": "observe", "check": "meaning", "choice": "0"}
        ).status_code
        == 404
    )
    with tenant_context(org_a):
        assert Enrolment.objects.filter(learner=learner).get().score == 0
    elsewhere = site_client(org_b, make_member(org_b, Role.LEARNER))
    assert elsewhere.post(f"/learn/{slug}/enrol/").status_code == 404
    assert elsewhere.get(f"/learn/{slug}/guide/").status_code == 404


def test_instructors_run_cohorts_and_read_their_progress(org_a, org_b, own_tutorial, site_client):
    slug = own_tutorial(org_a)
    instructor = make_member(org_a, Role.INSTRUCTOR)
    client = site_client(org_a, instructor)
    learners = [make_member(org_a, Role.LEARNER) for _ in range(3)]
    assert site_client(org_a, learners[0]).get("/cohorts/").status_code == 403

    assert 'data-testid="cohorts-empty"' in client.get("/cohorts/").content.decode()
    blank = client.post("/cohorts/", {"name": "  "})
    assert blank.status_code == 422
    assert "This field is required." in blank.content.decode()
    created = client.post("/cohorts/", {"name": "Spring cohort", "description": "Mondays"})
    cohort_url = created["Location"]
    twice = client.post("/cohorts/", {"name": "Spring cohort"})
    assert twice.status_code == 422
    assert "already exists" in twice.content.decode()

    emails = "\n".join(u.email for u in learners) + "\nstranger@example.test"
    added = client.post(f"{cohort_url}members/", {"emails": emails}, follow=True)
    text = added.content.decode()
    assert "Added 3 to Spring cohort." in text
    assert "stranger@example.test: not a member of" in text
    past = (timezone.now() - timedelta(days=2)).date().isoformat()
    refused = client.post(f"{cohort_url}assignments/", {"tutorial": slug, "due_on": past})
    assert refused.status_code == 422
    assert "The due date is in the past." in refused.content.decode()
    unknown = client.post(f"{cohort_url}assignments/", {"tutorial": "no-such"})
    assert unknown.status_code == 422
    due = (timezone.now() + timedelta(days=7)).date().isoformat()
    client.post(f"{cohort_url}assignments/", {"tutorial": slug, "due_on": due})

    # One learner finishes the quiz step, one is enrolled, one has not started.
    with tenant_context(org_a):
        done = enrolment_create(learner=learners[0], slug=slug)
        quiz_answer_submit(
            learner=learners[0],
            enrolment_id=done.pk,
            step_slug="observe",
            check_id="meaning",
            chosen=[0],
        )
        enrolment_create(learner=learners[1], slug=slug)
    assigned = site_client(org_a, learners[2]).get("/learn/").content.decode()
    assert 'data-testid="assigned"' in assigned
    assert "Spring cohort" in assigned

    report = client.get(f"{cohort_url}tutorials/{slug}/").content.decode()
    assert report.count('data-testid="cell"') == 3 * 2
    assert 'data-status="none"' in report
    only_started = client.get(f"{cohort_url}tutorials/{slug}/matrix/?show=not-started")
    assert only_started.content.decode().count("data-learner=") == 1
    export = client.get(f"{cohort_url}tutorials/{slug}/export.csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert len(rows) == 3 * 2
    assert {r["status"] for r in rows} >= {"not-enrolled", "open", "locked"}

    # Another organisation's instructor finds no such cohort.
    outsider = site_client(org_b, make_member(org_b, Role.INSTRUCTOR))
    assert outsider.get(cohort_url).status_code == 404
    assert "Spring cohort" not in outsider.get("/cohorts/").content.decode()

    confirm = client.get(f"{cohort_url}delete/")
    assert 'data-testid="confirm-delete"' in confirm.content.decode()
    client.post(f"{cohort_url}delete/")
    with tenant_context(org_a):
        assert not Cohort.objects.exists()
        assert Enrolment.objects.count() == 2  # progress outlives the cohort


def test_the_matrix_costs_the_same_queries_for_any_cohort_size(org_a, own_tutorial):
    slug = own_tutorial(org_a)
    owner = make_member(org_a, Role.OWNER)
    counts = []
    with tenant_context(org_a):
        cohort = cohort_create(organisation=org_a, actor=owner, name="Sized")
        assignment_create(
            organisation=org_a, actor=owner, cohort_id=cohort.pk, tutorial_slug=slug, due_at=None
        )
        for more in (4, 16):
            people = [make_member(org_a, Role.LEARNER) for _ in range(more)]
            cohort_members_add(
                organisation=org_a,
                actor=owner,
                cohort_id=cohort.pk,
                emails=[p.email for p in people],
            )
            for person in people:
                enrolment_create(learner=person, slug=slug)
            with CaptureQueriesContext(connection) as queries:
                report = cohort_report(cohort=cohort, tutorial_slug=slug)
            assert report is not None
            counts.append((report.enrolled, len(queries)))
    assert counts[0][0] == 4
    assert counts[1][0] == 20
    assert counts[0][1] == counts[1][1]
