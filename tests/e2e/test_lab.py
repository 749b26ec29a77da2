"""A learner's lab in a real browser: start it, watch the charts move, inject latency and
see p99 rise, switch a mitigation, stop; an instructor watches read-only; a learner of
another organisation cannot open it."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from apps.accounts.models import Role
from tests.conftest import make_member
from tests.e2e.test_signup_invite import site
from tests.platform.test_websocket_tenants import session_cookie_for
from tests.support.servers import celery_worker, relay_process

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.worker]
NO_VALUE = "\u2013"  # what the page shows before the first frame


def logged_in(browser, organisation, user, port):
    context = browser.new_context()
    name, _, value = session_cookie_for(user, organisation).partition("=")
    # as a real login sets it: for every organisation's site
    context.add_cookies(
        [{"name": name, "value": value, "domain": f".{settings.BASE_DOMAIN}", "path": "/"}]
    )
    return context.new_page()


def p99(page) -> float:
    text = page.get_by_test_id("p99").inner_text()
    return float(text) if re.fullmatch(r"[\d.]+", text) else -1.0


def test_learner_runs_a_lab_instructor_watches(
    browser, e2e_port, committed_organisations, sandbox_root, shots
):
    organisation = committed_organisations("Lab Org")
    other = committed_organisations("Elsewhere")
    learner = make_member(organisation, Role.LEARNER)
    instructor = make_member(organisation, Role.INSTRUCTOR)
    stranger = make_member(other, Role.LEARNER)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)), relay_process():
        page = logged_in(browser, organisation, learner, e2e_port)
        page.goto(site(e2e_port, organisation.slug, "/labs/"))
        page.get_by_role("button", name="Start lab").click()
        expect(page.get_by_test_id("lab-state")).to_have_text("Running", timeout=30_000)
        expect(page.get_by_test_id("rps")).not_to_have_text(NO_VALUE, timeout=10_000)
        baseline = p99(page)
        shots(page, "01-lab-running")

        page.locator("[data-scenario=fixed-latency] summary").click()
        page.fill("#fixed-latency-delay_ms", "400")
        page.locator("[data-scenario=fixed-latency]").get_by_role("button", name="Enable").click()
        expect(page.locator("[data-scenario=fixed-latency] .badge.on")).to_be_visible(
            timeout=10_000
        )
        page.wait_for_function(
            "() => parseFloat(document.querySelector('[data-testid=p99]').textContent) > 300",
            timeout=20_000,
        )
        assert p99(page) > max(baseline, 0) + 200
        # the scenario's own declared metrics get a panel of their own
        panel = page.locator("[data-panel=fixed-latency]")
        expect(panel).to_contain_text("A slow dependency")
        expect(panel.locator("[data-metric=sdlab_injected_faults_total]")).to_have_count(1)
        expect(page.get_by_test_id("timeline")).to_contain_text("fixed-latency")
        shots(page, "02-latency-injected")

        page.fill("#load-rate_rps", "8")
        page.get_by_role("button", name="Set load").click()
        expect(page.get_by_test_id("load-now")).to_have_text("8", timeout=10_000)

        page.locator("[data-mitigation=timeouts]").check()
        expect(page.locator("[data-mitigation=timeouts]")).to_be_checked()

        watcher = logged_in(browser, organisation, instructor, e2e_port)
        lab_path = page.url.split(str(e2e_port), 1)[1]
        watcher.goto(site(e2e_port, organisation.slug, lab_path))
        expect(watcher.get_by_test_id("read-only")).to_be_visible()
        expect(watcher.get_by_test_id("rps")).not_to_have_text(NO_VALUE, timeout=10_000)
        expect(watcher.get_by_role("button", name="Stop lab")).to_have_count(0)
        shots(watcher, "03-instructor-watching")

        outsider = logged_in(browser, other, stranger, e2e_port)
        answer = outsider.goto(site(e2e_port, organisation.slug, lab_path))
        assert answer is not None
        assert answer.status == 404

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Stop lab").click()
        expect(page.get_by_test_id("lab-state")).to_have_text("Stopped", timeout=30_000)
        expect(page.get_by_role("button", name="Start this lab again")).to_be_visible()
        shots(page, "04-stopped")
