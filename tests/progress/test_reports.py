"""The instructor's report on a cohort with learners in distinct states, each made through
the real services: the completion funnel's passed counts and shares, the median time per
step, who is stuck and why (many wrong answers, or no progress for a while), on the
report object and on the page; an unknown matrix filter is refused naming the field."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.models import Enrolment
from apps.progress.reports import cohort_report
from apps.progress.services import check_result_record, enrolment_create, quiz_answer_submit
from apps.progress.teaching import assignment_create, cohort_create, cohort_members_add
from tests.conftest import make_member

WRONG = [1]  # the quiz "meaning" of the test tutorial: choice 0 is right, 1 is wrong


def _pass_observe(enrolment: Enrolment, after_s: int) -> None:
    """The first step's two checks pass; the last one `after_s` after the step opened."""
    opened = enrolment.steps.get(step_slug="observe").opened_at
    assert opened is not None
    check_result_record(
        enrolment_id=enrolment.pk,
        step_slug="observe",
        check_id="healthy",
        at=opened + timedelta(seconds=after_s // 2),
    )
    check_result_record(
        enrolment_id=enrolment.pk,
        step_slug="observe",
        check_id="meaning",
        source="quiz",
        at=opened + timedelta(seconds=after_s),
    )


def _pass_fix(enrolment: Enrolment, after_s: int) -> None:
    opened = enrolment.steps.get(step_slug="fix").opened_at
    assert opened is not None
    for check_id in ("broken", "fixed"):
        check_result_record(
            enrolment_id=enrolment.pk,
            step_slug="fix",
            check_id=check_id,
            at=opened + timedelta(seconds=after_s),
        )


def _idle_for(enrolment: Enrolment, minutes: float) -> None:
    # The clock moved on: the learner's last activity was this long ago.
    Enrolment.objects.filter(pk=enrolment.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.fixture
def cohort_in_every_state(org_a, own_tutorial, settings):
    """Ten learners of one cohort on the two-step tutorial:
    done      both steps passed (observe in 60 s, fix in 200 s), then idle an hour
    quick     observe passed in 120 s
    slow      observe passed in 300 s
    guessing  3 wrong answers on observe: stuck
    idle      enrolled, nothing for 20 min: stuck
    trying    2 wrong answers on observe, just now: not stuck
    and four who have not started."""
    settings.PROGRESS_STUCK_ATTEMPTS = 3
    settings.PROGRESS_STUCK_AFTER_S = 15 * 60
    slug = own_tutorial(org_a)
    owner = make_member(org_a, Role.OWNER)
    names = ["done", "quick", "slow", "guessing", "idle", "trying", "n1", "n2", "n3", "n4"]
    people = {name: make_member(org_a, Role.LEARNER) for name in names}
    with tenant_context(org_a):
        cohort = cohort_create(organisation=org_a, actor=owner, name="Autumn")
        cohort_members_add(
            organisation=org_a,
            actor=owner,
            cohort_id=cohort.pk,
            emails=[p.email for p in people.values()],
        )
        assignment_create(
            organisation=org_a, actor=owner, cohort_id=cohort.pk, tutorial_slug=slug, due_at=None
        )
        enrolments = {name: enrolment_create(learner=people[name], slug=slug) for name in names[:6]}
        _pass_observe(enrolments["done"], 60)
        _pass_fix(enrolments["done"], 200)
        _idle_for(enrolments["done"], 60)  # completed work is never stuck
        _pass_observe(enrolments["quick"], 120)
        _pass_observe(enrolments["slow"], 300)
        for name, wrong in (("guessing", 3), ("trying", 2)):
            for _ in range(wrong):
                quiz_answer_submit(
                    learner=people[name],
                    enrolment_id=enrolments[name].pk,
                    step_slug="observe",
                    check_id="meaning",
                    chosen=WRONG,
                )
        _idle_for(enrolments["idle"], 20.5)
    return {"slug": slug, "cohort": cohort, "owner": owner, "people": people}


def test_the_funnel_counts_passes_and_shares_and_the_median_time_per_step(
    org_a, cohort_in_every_state
):
    slug, cohort = cohort_in_every_state["slug"], cohort_in_every_state["cohort"]
    with tenant_context(org_a):
        report = cohort_report(cohort=cohort, tutorial_slug=slug)
    assert report is not None
    assert (report.learners, report.enrolled, report.completed) == (10, 6, 1)
    observe, fix = report.funnel
    assert (observe.slug, observe.passed, observe.share) == ("observe", 3, 0.3)
    assert observe.median_seconds == 120  # of 60, 120 and 300
    assert (fix.slug, fix.passed, fix.share) == ("fix", 1, 0.1)
    assert fix.median_seconds == 200


def test_stuck_learners_are_those_with_many_wrong_answers_or_no_progress_for_a_while(
    org_a, cohort_in_every_state
):
    slug, cohort = cohort_in_every_state["slug"], cohort_in_every_state["cohort"]
    people = cohort_in_every_state["people"]
    with tenant_context(org_a):
        report = cohort_report(cohort=cohort, tutorial_slug=slug)
    assert report is not None
    stuck = {row.email: row.stuck_reason for row in report.stuck}
    assert stuck == {
        people["guessing"].email: "3 wrong answers on “observe”",
        people["idle"].email: "no progress for 20 min",
    }
    states = {row.email: row.state for row in report.rows}
    assert states[people["done"].email] == "completed"
    assert states[people["trying"].email] == "in-progress"
    assert states[people["n1"].email] == "not-started"
    assert {r.email for r in report.filtered("stuck")} == set(stuck)


def _funnel_rows(page: str) -> list[list[str]]:
    table = page.split('data-testid="funnel"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]  # after the header
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", r, re.S)]
        for r in rows
    ]


def test_the_report_page_shows_the_funnel_medians_and_stuck_learners(
    org_a, cohort_in_every_state, site_client
):
    slug, cohort = cohort_in_every_state["slug"], cohort_in_every_state["cohort"]
    people = cohort_in_every_state["people"]
    client = site_client(org_a, make_member(org_a, Role.INSTRUCTOR))
    response = client.get(f"/cohorts/{cohort.pk}/tutorials/{slug}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert _funnel_rows(page) == [
        ["1. Observe", "3", "30%", "120 s"],
        ["2. Break and fix", "1", "10%", "200 s"],
    ]
    assert re.search(r'data-testid="stuck-count">2<', page)
    assert re.search(r'data-testid="learners">10<', page)
    assert re.search(r'data-testid="completed-count">1<', page)
    assert "stuck: 3 wrong answers on “observe”" in page
    assert "stuck: no progress for 20 min" in page

    matrix = client.get(f"/cohorts/{cohort.pk}/tutorials/{slug}/matrix/?show=stuck")
    shown = set(re.findall(r'data-learner="(\d+)"', matrix.content.decode()))
    assert shown == {str(people["guessing"].pk), str(people["idle"].pk)}


@pytest.mark.parametrize("path", ["", "matrix/"])
def test_an_unknown_matrix_filter_is_refused_naming_the_field(
    org_a, cohort_in_every_state, site_client, path
):
    slug, cohort = cohort_in_every_state["slug"], cohort_in_every_state["cohort"]
    client = site_client(org_a, make_member(org_a, Role.INSTRUCTOR))
    url = f"/cohorts/{cohort.pk}/tutorials/{slug}/{path}"
    refused = client.get(f"{url}?show=everyone")
    assert refused.status_code == 422
    text = refused.content.decode()
    assert 'data-testid="filter-error"' in text
    assert "Show: “everyone” is not a filter: choose one of all, not-started" in text
    assert "data-learner=" not in text  # no rows under a filter nobody asked for
    empty = client.get(f"{url}?show=")
    assert empty.status_code == 422
    assert "Show: Choose a filter" in empty.content.decode()
    # Every known filter is still taken, and no filter at all means all.
    for show, rows in (("", 10), ("?show=all", 10), ("?show=completed", 1), ("?show=stuck", 2)):
        response = client.get(f"{url}{show}")
        assert response.status_code == 200
        assert 'data-testid="filter-error"' not in response.content.decode()
        assert response.content.decode().count("data-learner=") == rows
