"""The progress API: enrol, read, answer (only on one's own enrolment), and instructors'
cohorts and cohort progress; every answer validated against the committed schema."""

from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.progress.models import CheckResult
from apps.progress.teaching import cohort_members_add
from tests.conftest import host_of, make_member
from tests.support.openapi import assert_conforms


def api_for(organisation, user) -> APIClient:
    client = APIClient(HTTP_HOST=host_of(organisation))
    client.force_authenticate(user)
    return client


def ok(response):
    assert_conforms(response, site="tenant")
    return response


def test_a_learner_enrols_and_answers_only_for_themselves(org_a, org_b, own_tutorial):
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    classmate = make_member(org_a, Role.LEARNER)
    instructor = make_member(org_a, Role.INSTRUCTOR)
    api = api_for(org_a, learner)

    missing = ok(api.post("/api/v1/enrolments/", {"tutorial": "nope"}, format="json"))
    assert missing.status_code == 404
    bad = ok(api.post("/api/v1/enrolments/", {"tutorial": "Not A Slug!"}, format="json"))
    assert bad.status_code == 422
    assert "tutorial" in bad.json()["extra"]["fields"]
    created = ok(api.post("/api/v1/enrolments/", {"tutorial": slug}, format="json"))
    assert created.status_code == 201
    enrolment = created.json()
    assert [s["status"] for s in enrolment["steps"]] == ["open", "locked"]
    listed = ok(api.get("/api/v1/enrolments/")).json()
    assert [e["id"] for e in listed["results"]] == [enrolment["id"]]

    answers = f"/api/v1/enrolments/{enrolment['id']}/answers/"
    empty = ok(
        api.post(answers, {"step": "observe", "check": "meaning", "choices": []}, format="json")
    )
    assert empty.status_code == 422
    out_of_range = ok(
        api.post(answers, {"step": "observe", "check": "meaning", "choices": [9]}, format="json")
    )
    assert out_of_range.status_code == 422
    assert out_of_range.json()["extra"]["field"] == "choices"
    locked = ok(
        api.post(answers, {"step": "fix", "check": "broken", "choices": [0]}, format="json")
    )
    assert locked.status_code == 404  # not a question: telemetry records that check

    # Nobody answers for someone else: a classmate and an instructor are refused.
    for other in (classmate, instructor):
        refused = ok(
            api_for(org_a, other).post(
                answers, {"step": "observe", "check": "meaning", "choices": [0]}, format="json"
            )
        )
        assert refused.status_code == 403
    assert (
        ok(api_for(org_a, classmate).get(f"/api/v1/enrolments/{enrolment['id']}/")).status_code
        == 403
    )
    assert (
        ok(api_for(org_a, instructor).get(f"/api/v1/enrolments/{enrolment['id']}/")).status_code
        == 200
    )
    # Another organisation: the enrolment does not exist there.
    stranger = make_member(org_b, Role.OWNER)
    assert (
        ok(api_for(org_b, stranger).get(f"/api/v1/enrolments/{enrolment['id']}/")).status_code
        == 404
    )
    with tenant_context(org_a):
        assert not CheckResult.objects.exists()

    right = ok(
        api.post(answers, {"step": "observe", "check": "meaning", "choices": [0]}, format="json")
    )
    assert right.json() == {
        "right": True,
        "explanations": ["Right."],
        "step_passed": False,  # the metric check of the step is still to pass
        "tutorial_completed": False,
    }


def test_instructors_read_cohort_progress(org_a, own_tutorial):
    slug = own_tutorial(org_a)
    instructor = make_member(org_a, Role.INSTRUCTOR)
    learner = make_member(org_a, Role.LEARNER)
    api = api_for(org_a, instructor)
    assert ok(api_for(org_a, learner).get("/api/v1/cohorts/")).status_code == 403
    blank = ok(api.post("/api/v1/cohorts/", {"name": ""}, format="json"))
    assert blank.status_code == 422
    cohort = ok(api.post("/api/v1/cohorts/", {"name": "Tuesdays"}, format="json")).json()
    twice = ok(api.post("/api/v1/cohorts/", {"name": "Tuesdays"}, format="json"))
    assert twice.status_code == 409
    with tenant_context(org_a):
        cohort_members_add(
            organisation=org_a, actor=instructor, cohort_id=cohort["id"], emails=[learner.email]
        )
    api_for(org_a, learner).post("/api/v1/enrolments/", {"tutorial": slug}, format="json")
    progress = ok(api.get(f"/api/v1/cohorts/{cohort['id']}/progress/?tutorial={slug}")).json()
    assert progress["learners"] == 1
    assert progress["enrolled"] == 1
    assert progress["rows"][0]["cells"][0]["status"] == "open"
    assert [f["step"] for f in progress["funnel"]] == ["observe", "fix"]
    no_tutorial = ok(api.get(f"/api/v1/cohorts/{cohort['id']}/progress/"))
    assert no_tutorial.status_code == 422
    wrong_filter = ok(api.get(f"/api/v1/cohorts/{cohort['id']}/progress/?tutorial={slug}&show=x"))
    assert wrong_filter.status_code == 422
    assert ok(api.get(f"/api/v1/cohorts/999999/progress/?tutorial={slug}")).status_code == 404
