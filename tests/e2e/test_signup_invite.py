"""A new customer's first day, in a real browser: sign up, verify the email, create the
organisation, invite a learner who joins; the learner is kept out of the admin console;
the owner promotes them and the audit log shows it."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.conftest import unique

pytestmark = pytest.mark.xdist_group("browser")

PASSWORD = "a-long-and-unusual-passphrase"


def site(port: int, slug: str | None = None, path: str = "/") -> str:
    host = f"{slug}.{settings.BASE_DOMAIN}" if slug else settings.BASE_DOMAIN
    return f"http://{host}:{port}{path}"


def verification_code(outbox, address: str) -> str:
    body = outbox.latest_to(address)
    after = body.split("enter it in your open browser window.", 1)[1]
    return next(line.strip() for line in after.splitlines() if line.strip())


def test_sign_up_create_organisation_invite_and_promote(browser, e2e_port, outbox, shots):
    owner_email = f"{unique('owner')}@example.test"
    learner_email = f"{unique('learner')}@example.test"
    slug = unique("acme").replace("_", "-")

    owner = browser.new_context().new_page()
    owner.goto(site(e2e_port, path="/accounts/signup/"))
    owner.fill("input[name=email]", owner_email)
    owner.fill("input[name=password1]", PASSWORD)
    owner.fill("input[name=password2]", PASSWORD)
    shots(owner, "01-signup")
    owner.get_by_role("button", name=re.compile("sign up", re.I)).click()

    owner.fill("input[name=code]", verification_code(outbox, owner_email))
    owner.get_by_role("button", name="Confirm").click()

    expect(owner.get_by_role("heading", name="Create your organisation")).to_be_visible()
    owner.fill("#id_name", "Acme Labs")
    owner.fill("#id_slug", slug)
    expect(owner.get_by_test_id("slug-status")).to_contain_text("is available")
    expect(owner.get_by_test_id("slug-preview")).to_have_text(slug)
    shots(owner, "02-create-organisation")
    owner.get_by_role("button", name="Create organisation").click()

    expect(owner).to_have_url(site(e2e_port, slug))
    expect(owner.get_by_test_id("role")).to_have_text("Owner")
    expect(owner.get_by_test_id("org-name")).to_have_text("Acme Labs")

    owner.get_by_role("link", name="Admin console").click()
    owner.get_by_role("link", name="Invitations").click()
    owner.fill("#id_email", learner_email)
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.get_by_text(f"Invitation sent to {learner_email}")).to_be_visible()
    expect(owner.get_by_test_id("seats")).to_contain_text("2 of")
    shots(owner, "03-invitations")

    learner = browser.new_context().new_page()
    learner.goto(outbox.link_to(learner_email))
    expect(learner.get_by_role("heading", name="Join Acme Labs")).to_be_visible()
    learner.fill("#id_display_name", "Lena Learner")
    learner.fill("#id_password1", PASSWORD)
    learner.fill("#id_password2", PASSWORD)
    learner.get_by_role("button", name="Create account and join").click()
    expect(learner).to_have_url(site(e2e_port, slug))
    expect(learner.get_by_test_id("role")).to_have_text("Learner")
    expect(learner.get_by_role("link", name="Admin console")).to_have_count(0)

    refused = learner.goto(site(e2e_port, slug, "/manage/members/"))
    assert refused is not None
    assert refused.status == 403
    expect(learner.get_by_test_id("forbidden")).to_be_visible()
    shots(learner, "04-learner-forbidden")

    owner.get_by_role("link", name="Members").click()
    row = owner.get_by_test_id("member-row").filter(has_text=learner_email)
    with owner.expect_response(lambda r: "/role/" in r.url and r.status == 200):
        row.get_by_label(f"Role of {learner_email}").select_option("instructor")
    expect(
        owner.get_by_test_id("member-row").filter(has_text=learner_email).get_by_role("combobox")
    ).to_have_value("instructor")
    owner.reload()
    expect(row.get_by_role("combobox")).to_have_value("instructor")

    owner.get_by_role("link", name="Audit log").click()
    change = owner.get_by_test_id("audit-row").filter(has_text="member.role_changed")
    expect(change).to_contain_text(learner_email)
    expect(change).to_contain_text("role: learner")
    expect(change).to_contain_text("role: instructor")
    expect(change).to_contain_text(owner_email)
    shots(owner, "05-audit-log")

    learner.goto(site(e2e_port, slug))
    expect(learner.get_by_test_id("role")).to_have_text("Instructor")
