"""A tutorial in a real browser: a learner enrols and starts the lab; the first check
passes on its own once they inject the fault; a wrong answer earns a hint; the step
completes and the tutorial ends on the dashboard. Their instructor, watching the cohort's
matrix, sees each step land without reloading, then pushes an incident drill that the
learner reports from the lab page, which the drill's page records live."""

import re

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from apps.accounts.models import Role
from apps.progress.teaching import assignment_create, cohort_create, cohort_members_add
from apps.tutorials.content import tutorial_read
from apps.tutorials.services import tutorials_store
from tests.conftest import make_member
from tests.e2e.test_lab import logged_in
from tests.e2e.test_signup_invite import site
from tests.progress.conftest import tutorial_write
from tests.support.servers import celery_worker, relay_process

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.worker]

TUTORIAL = {
    "tutorial.md": (
        "---\nseries: resilience\ntitle: Break it, then mend it\nlevel: beginner\n"
        "minutes: 10\nlab:\n  scenarios: []\n---\nA first incident of your own.\n"
    ),
    "01-break.md": (
        "---\ntitle: Make inventory slow\nchecks:\n"
        "  - {id: injected, type: scenario, slug: fixed-latency, enabled: true,"
        " message: Inventory is slow now.}\n"
        "  - id: who-waits\n    type: quiz\n    question: Who waits for a slow inventory?\n"
        "    choices:\n"
        "      - {text: Users whose reads miss the cache, correct: true, explanation: Misses go"
        " to inventory.}\n"
        "      - {text: Nobody, explanation: Every cache miss waits for inventory.}\n"
        "hints:\n  - {after_attempts: 1, text: Follow a read that misses the cache.}\n"
        "---\nEnable **A slow dependency** in the lab.\n"
    ),
    "02-mend.md": (
        "---\ntitle: Let the cache hide it\ndepends_on: [break]\nchecks:\n"
        "  - {id: cached, type: mitigation, slug: longer-cache-ttl, enabled: true}\n"
        "---\nTurn on longer cache TTLs.\n"
    ),
}


def test_a_learner_completes_a_tutorial_and_the_instructor_sees_it_live(
    browser, e2e_port, committed_organisations, sandbox_root, shots, tmp_path
):
    organisation = committed_organisations("Tutorial Org")
    learner = make_member(organisation, Role.LEARNER)
    instructor = make_member(organisation, Role.INSTRUCTOR)
    folder = tutorial_write(tmp_path / "break-then-mend", TUTORIAL)
    with tenant_context(organisation):
        tutorials_store(tutorials=[tutorial_read(folder)])
        cohort = cohort_create(organisation=organisation, actor=instructor, name="Evening class")
        cohort_members_add(
            organisation=organisation,
            actor=instructor,
            cohort_id=cohort.pk,
            emails=[learner.email],
        )
        assignment_create(
            organisation=organisation,
            actor=instructor,
            cohort_id=cohort.pk,
            tutorial_slug="break-then-mend",
            due_at=None,
        )
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)), relay_process():
        teacher = logged_in(browser, organisation, instructor, e2e_port)
        teacher.goto(
            site(e2e_port, organisation.slug, f"/cohorts/{cohort.pk}/tutorials/break-then-mend/")
        )
        expect(teacher.locator("[data-testid=cell]")).to_have_count(2)
        expect(teacher.locator("[data-testid=cell][data-status=none]")).to_have_count(2)

        page = logged_in(browser, organisation, learner, e2e_port)
        page.goto(site(e2e_port, organisation.slug, "/learn/"))
        expect(page.get_by_test_id("assigned")).to_contain_text("Break it, then mend it")
        page.goto(site(e2e_port, organisation.slug, "/tutorials/break-then-mend/"))
        page.get_by_test_id("enrol").click()
        page.get_by_test_id("start-lab").click()
        expect(page.get_by_test_id("lab-state")).to_have_text("Running", timeout=30_000)
        injected = page.locator("[data-check=injected]")
        expect(injected).to_have_attribute("data-passed", "false")
        shots(page, "01-tutorial-lab")

        page.locator("[data-scenario=fixed-latency] summary").click()
        page.locator("[data-scenario=fixed-latency]").get_by_role("button", name="Enable").click()
        # No button: the relay's next frames pass the check, and the guide says so.
        expect(page.locator("[data-check=injected]")).to_have_attribute(
            "data-passed", "true", timeout=15_000
        )
        expect(page.locator("[data-check=injected]")).to_contain_text("Inventory is slow now.")

        quiz = page.locator("form[data-check=who-waits]")
        quiz.get_by_label("Nobody").check()
        quiz.get_by_role("button", name="Answer").click()
        expect(page.get_by_test_id("answer-feedback")).to_contain_text("Not quite")
        expect(page.get_by_test_id("hint")).to_contain_text("Follow a read that misses the cache.")
        shots(page, "02-hint")
        quiz = page.locator("form[data-check=who-waits]")
        quiz.get_by_label("Users whose reads miss the cache").check()
        quiz.get_by_role("button", name="Answer").click()
        expect(page.locator("[data-step=break]")).to_have_attribute("data-status", "passed")
        expect(page.locator("[data-step=mend]")).to_have_attribute("data-status", "open")

        # The instructor's matrix, never reloaded, shows the first step passed.
        first_cell = teacher.locator("[data-testid=cell][data-step='0']")
        expect(first_cell).to_have_attribute("data-status", "passed", timeout=10_000)
        shots(teacher, "03-matrix-live")

        page.locator("[data-mitigation=longer-cache-ttl]").check()
        expect(page.get_by_test_id("completed")).to_be_visible(timeout=15_000)
        expect(teacher.locator("[data-testid=cell][data-step='1']")).to_have_attribute(
            "data-status", "passed", timeout=10_000
        )
        expect(teacher.get_by_test_id("completed-count")).to_have_text("0")  # not reloaded
        lab_url = page.url

        page.goto(site(e2e_port, organisation.slug, "/learn/"))
        expect(page.get_by_test_id("completed-list")).to_contain_text("Break it, then mend it")
        shots(page, "04-dashboard")

        # An incident drill, pushed into the running lab and reported from it.
        teacher.goto(site(e2e_port, organisation.slug, f"/cohorts/{cohort.pk}/"))
        teacher.select_option("#id_scenario", "error-burst")
        teacher.once("dialog", lambda dialog: dialog.accept())
        page.goto(lab_url)
        expect(page.get_by_test_id("lab-state")).to_have_text("Running", timeout=10_000)
        teacher.get_by_test_id("start-drill").click()
        expect(teacher.get_by_test_id("drill-run")).to_have_count(1)
        expect(teacher.get_by_test_id("detect")).to_have_text("not yet")
        expect(page.get_by_test_id("lab-notice")).to_contain_text("Incident drill", timeout=10_000)
        expect(page.locator("[data-scenario=error-burst] .badge.on")).to_be_hidden()
        page.get_by_test_id("notice-action").click()
        expect(page.get_by_test_id("lab-notice")).to_contain_text("Noted")
        expect(teacher.get_by_test_id("detect")).to_have_text(
            re.compile(r"^\d+ s$"), timeout=10_000
        )
        shots(teacher, "05-drill-recorded")
