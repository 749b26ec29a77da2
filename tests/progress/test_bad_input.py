"""Bad input over HTTP, answered with an error that names what was wrong, and nothing
already saved lost: the drill form's parameters (not JSON, not an object, out of bounds),
a quiz answer that is not one of the choices, and a drill "found it" with nothing to find,
asked for as JSON."""

import html
import re

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.drills import drill_end, drill_start
from apps.progress.models import CheckResult, Drill, DrillRun, StepProgress
from apps.progress.services import check_result_record, enrolment_create
from apps.progress.teaching import cohort_create, cohort_members_add
from tests.conftest import make_member


def _field_errors(page: str, field: str) -> list[str]:
    """The errors Django shows beside one field of the form."""
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', page, re.S)
    if found is None:
        return []
    return [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]


@pytest.fixture
def drilled_cohort(org_a, site_client):
    """A cohort with one learner and one drill already run and ended."""
    owner = make_member(org_a, Role.OWNER)
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        cohort = cohort_create(organisation=org_a, actor=owner, name="Night shift")
        cohort_members_add(
            organisation=org_a, actor=owner, cohort_id=cohort.pk, emails=[learner.email]
        )
        earlier = drill_start(
            organisation=org_a,
            actor=owner,
            cohort_id=cohort.pk,
            scenario="fixed-latency",
            parameters={"delay_ms": 250},
        )
        drill_end(organisation=org_a, actor=owner, drill_id=earlier.pk)
    return {
        "cohort": cohort,
        "earlier": earlier,
        "learner": learner,
        "client": site_client(org_a, make_member(org_a, Role.INSTRUCTOR)),
    }


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ('{"delay_ms": 400', "Enter a valid JSON."),
        ("[400]", "Parameters must be an object of names and values."),
        ('{"delay_ms": 1000000000}', "fixed-latency: delay_ms must be"),
        ('{"delay_ms": "soon"}', "fixed-latency: delay_ms must be"),
    ],
    ids=["not-json", "not-an-object", "out-of-bounds", "not-a-number"],
)
def test_bad_drill_parameters_are_refused_beside_the_field_and_nothing_is_lost(
    org_a, drilled_cohort, typed, error
):
    cohort, client = drilled_cohort["cohort"], drilled_cohort["client"]
    response = client.post(
        f"/cohorts/{cohort.pk}/drills/", {"scenario": "fixed-latency", "parameters": typed}
    )
    assert response.status_code == 422
    page = response.content.decode()
    errors = _field_errors(page, "parameters")
    assert len(errors) == 1
    assert errors[0].startswith(error)
    assert _field_errors(page, "scenario") == []
    # What the instructor typed is on the form again, to be corrected rather than retyped.
    textarea = re.search(r'<textarea name="parameters"[^>]*>(.*?)</textarea>', page, re.S)
    assert textarea is not None
    assert html.unescape(textarea.group(1)).strip() == typed
    assert 'value="fixed-latency" selected' in page
    with tenant_context(org_a):
        assert list(Drill.objects.filter(cohort=cohort)) == [drilled_cohort["earlier"]]
        assert Drill.objects.get().parameters == {"delay_ms": 250}
        assert DrillRun.objects.filter(drill=drilled_cohort["earlier"]).count() == 1


def test_an_unknown_scenario_is_refused_beside_its_field(org_a, drilled_cohort):
    cohort, client = drilled_cohort["cohort"], drilled_cohort["client"]
    response = client.post(f"/cohorts/{cohort.pk}/drills/", {"scenario": "meteor"})
    assert response.status_code == 422
    errors = _field_errors(response.content.decode(), "scenario")
    assert errors == ["Select a valid choice. meteor is not one of the available choices."]
    with tenant_context(org_a):
        assert Drill.objects.count() == 1


@pytest.fixture
def answering(org_a, own_tutorial, site_client):
    """A learner enrolled in the test tutorial, whose first telemetry check has passed."""
    slug = own_tutorial(org_a)
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        enrolment = enrolment_create(learner=learner, slug=slug)
        check_result_record(enrolment_id=enrolment.pk, step_slug="observe", check_id="healthy")
    return {"slug": slug, "enrolment": enrolment, "client": site_client(org_a, learner)}


def _quiz_feedback(page: str, check: str) -> str:
    """The feedback shown inside one question's form."""
    form = page.split(f'data-testid="quiz" data-check="{check}"', 1)[1].split("</form>", 1)[0]
    found = re.search(r'data-testid="answer-feedback">(.*?)</div>', form, re.S)
    return html.unescape(found.group(1)) if found else ""


@pytest.mark.parametrize(
    ("choices", "error"),
    [
        (["abc"], "“abc” is not one of the answers: choose one of them."),
        (["0", "1.5"], "“1.5” is not one of the answers: choose one of them."),
        ([""], "Choose one of the answers."),
        (["7"], "Choose one of the answers."),
        (["-1"], "Choose one of the answers."),
    ],
    ids=["word", "fraction", "empty", "out-of-range", "negative"],
)
def test_an_answer_that_is_not_a_choice_is_refused_and_not_counted(
    org_a, answering, choices, error
):
    slug, enrolment, client = answering["slug"], answering["enrolment"], answering["client"]
    response = client.post(
        f"/learn/{slug}/answer/",
        {"step": "observe", "check": "meaning", "choice": choices},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200  # the guide fragment, with the refusal in the question
    page = response.content.decode()
    assert error in _quiz_feedback(page, "meaning")
    assert "Not quite" not in page
    assert "Percentiles rank requests by latency." not in page  # no hint: nothing was wrong
    with tenant_context(org_a):
        progress = StepProgress.objects.get(enrolment=enrolment, step_slug="observe")
        assert progress.attempts == 0
        assert progress.wrong_answers == {}
        assert list(CheckResult.objects.filter(enrolment=enrolment).values_list("check_id")) == [
            ("healthy",)
        ]
        enrolment.refresh_from_db()
        assert enrolment.score == 1

    # Without JavaScript: back to the guide, the refusal shown in the question.
    plain = client.post(
        f"/learn/{slug}/answer/", {"step": "observe", "check": "meaning", "choice": choices}
    )
    assert plain.status_code == 302
    assert error in _quiz_feedback(client.get(f"/learn/{slug}/").content.decode(), "meaning")

    # The right answer afterwards earns the full points: the refusals cost nothing.
    client.post(f"/learn/{slug}/answer/", {"step": "observe", "check": "meaning", "choice": "0"})
    with tenant_context(org_a):
        enrolment.refresh_from_db()
        assert enrolment.score == 3


def test_finding_a_drill_with_nothing_injected_answers_409_as_json(
    org_a, drilled_cohort, site_client
):
    owner = make_member(org_a, Role.OWNER)
    learner = drilled_cohort["learner"]
    with tenant_context(org_a):
        drill = drill_start(
            organisation=org_a,
            actor=owner,
            cohort_id=drilled_cohort["cohort"].pk,
            scenario="fixed-latency",
        )
        run = DrillRun.objects.get(drill=drill, learner=learner)
    client: Client = site_client(org_a, learner)
    url = f"/drills/runs/{run.pk}/detected/"

    response = client.post(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "message": "Nothing was injected into your lab.",
        "extra": {"field": "drill"},
    }
    # Without JSON: back to the dashboard with the same message.
    page = client.post(url, follow=True)
    assert page.redirect_chain == [("/learn/", 302)]
    assert "Nothing was injected into your lab." in page.content.decode()
    # Another learner's run is not theirs to find, as JSON too.
    classmate = site_client(org_a, make_member(org_a, Role.LEARNER))
    assert classmate.post(url, HTTP_ACCEPT="application/json").status_code == 404
    with tenant_context(org_a):
        run.refresh_from_db()
        assert run.detected_at is None
        assert run.failure == "no lab running when the drill started"
        assert Drill.objects.get(pk=drill.pk).ended_at is None
