"""The identity pages and the admin console as a person uses them (Django's test client
against the real views): bad input shows a message on the page and loses nothing."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.accounts.invitations import invitation_create, invitation_link_create, invitation_revoke
from apps.accounts.models import AuditEntry, Invitation, Membership, Role
from apps.accounts.services import user_create
from apps.tenants.models import Organisation, Plan
from tests.conftest import PASSWORD, unique


@pytest.fixture
def owner_client(org_a, member_factory, site_client):
    owner = member_factory(org_a, Role.OWNER)
    client = site_client(org_a, owner)
    client.owner = owner
    return client


def membership(user, org):
    return Membership.objects.get(user=user, organisation=org)


# ------------------------------------------------------------------ organisation sign-up
@pytest.fixture
def verified_user(db):
    return user_create(
        email=f"{unique('new')}@example.test", password=PASSWORD, email_verified=True
    )


def test_new_organisation_makes_the_person_its_owner(site_client, verified_user):
    slug = unique("acme")
    answer = site_client(None, verified_user).post(
        "/organisations/new/", {"name": "Acme", "slug": slug}
    )
    assert answer.status_code == 302
    assert answer["Location"].startswith(f"http://{slug}.")
    organisation = Organisation.objects.get(slug=slug)
    assert membership(verified_user, organisation).role == Role.OWNER
    assert AuditEntry.objects.get(organisation=organisation).action == "organisation.created"


@pytest.mark.parametrize(
    ("slug", "message"),
    [("admin", "reserved"), ("taken", "already taken"), ("Bad Slug!", "Enter a valid")],
)
def test_taken_reserved_or_malformed_address_is_refused_on_the_page(
    site_client, verified_user, org_a, slug, message
):
    slug = org_a.slug if slug == "taken" else slug
    before = Organisation.objects.count()
    answer = site_client(None, verified_user).post(
        "/organisations/new/", {"name": "Acme", "slug": slug}
    )
    assert answer.status_code == 422
    assert message in answer.content.decode()
    assert f'value="{slug}"' in answer.content.decode()  # what was typed stays
    assert Organisation.objects.count() == before


def test_unverified_address_cannot_create_an_organisation(site_client, db):
    user = user_create(email="unverified@example.test", password=PASSWORD)
    answer = site_client(None, user).post("/organisations/new/", {"name": "A", "slug": unique("x")})
    assert answer.status_code == 422
    assert "Verify your email" in answer.content.decode()


def test_signup_is_closed_on_an_organisations_site(site_client, org_a):
    client = site_client(org_a)
    assert "Sign Up Closed" in client.get("/accounts/signup/").content.decode()
    email = f"{unique('x')}@example.test"
    client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert not EmailAddress.objects.filter(email=email).exists()


# ------------------------------------------------------------------ login rate limit
def test_many_wrong_passwords_are_rate_limited(site_client, org_a, member_factory):
    cache.clear()
    member = member_factory(org_a, Role.LEARNER)
    client = site_client(org_a)
    statuses = [
        client.post("/accounts/login/", {"login": member.email, "password": "wrong"}).status_code
        for _ in range(6)
    ]
    assert statuses[:5] == [200] * 5
    limited = client.post("/accounts/login/", {"login": member.email, "password": PASSWORD})
    # even the right password waits out the limit, and the page says so
    assert "Too many failed login attempts" in limited.content.decode()
    assert "_auth_user_id" not in client.session
    other = member_factory(org_a, Role.LEARNER)
    ok = site_client(org_a).post("/accounts/login/", {"login": other.email, "password": PASSWORD})
    assert ok.status_code == 302  # the limit is per address (and per client), not global


def test_password_reset_mail_is_sent(site_client, org_a, member_factory):
    member = member_factory(org_a, Role.LEARNER)
    answer = site_client().post("/accounts/password/reset/", {"email": member.email})
    assert answer.status_code == 302
    assert mail.outbox[-1].to == [member.email]
    assert "password" in mail.outbox[-1].subject.lower()


# ------------------------------------------------------------------ joining
def invite(org, owner, email="ada@example.test", role=Role.LEARNER):
    return invitation_create(actor=membership(owner, org), email=email, role=role)


def test_join_page_creates_the_account_and_signs_in(owner_client, org_a, site_client):
    invited = invite(org_a, owner_client.owner)
    client = site_client(org_a)
    page = client.get(f"/join/{invited.token}/")
    assert page.status_code == 200
    assert "Join Org A" in page.content.decode()
    answer = client.post(f"/join/{invited.token}/", {"password1": PASSWORD, "password2": PASSWORD})
    assert answer.status_code == 302
    assert client.get("/").status_code == 200
    user = Membership.objects.get(organisation=org_a, user__email="ada@example.test").user
    assert EmailAddress.objects.get(user=user).verified


def test_join_page_with_mismatched_passwords_keeps_the_invitation(owner_client, org_a, site_client):
    invited = invite(org_a, owner_client.owner)
    answer = site_client(org_a).post(
        f"/join/{invited.token}/", {"password1": PASSWORD, "password2": "other"}
    )
    assert answer.status_code == 422
    assert "The two passwords differ" in answer.content.decode()
    assert Invitation.objects.get(pk=invited.invitation.pk).uses == 0


@pytest.mark.parametrize("state", ["expired", "revoked", "used", "unknown"])
def test_unusable_invitations_say_why(state, owner_client, org_a, site_client):
    invited = invite(org_a, owner_client.owner)
    token = invited.token
    if state == "expired":
        Invitation.objects.update(expires_at=timezone.now() - timedelta(days=1))
    elif state == "revoked":
        invitation_revoke(
            actor=membership(owner_client.owner, org_a), invitation=invited.invitation
        )
    elif state == "used":
        Invitation.objects.update(uses=1)
    else:
        token = "nonsense"
    answer = site_client(org_a).get(f"/join/{token}/")
    assert answer.status_code == 410
    expected = {"expired": "expired", "revoked": "revoked", "used": "already been used"}
    assert expected.get(state, "not valid") in answer.content.decode()


def test_an_invitation_opens_only_on_its_own_organisations_site(
    owner_client, org_a, org_b, site_client
):
    invited = invite(org_a, owner_client.owner)
    assert site_client(org_b).get(f"/join/{invited.token}/").status_code == 404


def test_signed_in_member_of_another_organisation_accepts_a_link(
    owner_client, org_a, org_b, member_factory, site_client
):
    link = invitation_link_create(actor=membership(owner_client.owner, org_a), role=Role.INSTRUCTOR)
    elsewhere = member_factory(org_b, Role.OWNER)
    client = site_client(org_a, elsewhere)
    assert client.post(f"/join/{link.token}/").status_code == 302
    assert membership(elsewhere, org_a).role == Role.INSTRUCTOR
    home = client.get("/").content.decode()
    assert org_b.name in home  # the switcher offers the other organisation


# ------------------------------------------------------------------ console
def test_console_search_and_role_filter(owner_client, org_a, member_factory):
    target = member_factory(org_a, Role.INSTRUCTOR)
    member_factory(org_a, Role.LEARNER)
    page = owner_client.get("/manage/members/", {"q": target.email[:14]}).content.decode()
    assert target.email in page
    assert page.count('data-testid="member-row"') == 1
    filtered = owner_client.get("/manage/members/", {"role": "learner"}).content.decode()
    assert filtered.count('data-testid="member-row"') == 1
    empty = owner_client.get("/manage/members/", {"q": "nobody-like-this"}).content.decode()
    assert "No member matches" in empty
    fragment = owner_client.get("/manage/members/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment  # htmx asks for the table alone
    assert 'data-testid="member-row"' in fragment


def test_removing_the_last_owner_is_refused_on_the_page(owner_client, org_a):
    own = membership(owner_client.owner, org_a)
    confirm = owner_client.get(f"/manage/members/{own.pk}/remove/")
    assert "Remove" in confirm.content.decode()
    answer = owner_client.post(f"/manage/members/{own.pk}/remove/")
    assert answer.status_code == 409
    assert "last owner" in answer.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


def test_inline_role_change_answers_the_row(owner_client, org_a, member_factory):
    learner = membership(member_factory(org_a, Role.LEARNER), org_a)
    row = owner_client.post(
        f"/manage/members/{learner.pk}/role/", {"role": "instructor"}, HTTP_HX_REQUEST="true"
    )
    assert row.status_code == 200
    assert 'value="instructor" selected' in row.content.decode()
    learner.refresh_from_db()
    assert learner.role == Role.INSTRUCTOR


def test_csv_upload_reports_bad_rows(owner_client, org_a):
    upload = SimpleUploadedFile("people.csv", b"email\nok@example.test\nbroken\n", "text/csv")
    answer = owner_client.post(
        "/manage/invitations/bulk/", {"csv_text": "", "csv_file": upload, "role": "learner"}
    )
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "1 invited, 1 refused" in page
    assert "“broken” is not a valid email address" in page
    assert Invitation.objects.filter(email="ok@example.test").exists()


def test_non_utf8_upload_is_refused_with_a_message(owner_client):
    upload = SimpleUploadedFile("people.csv", "é@example.test".encode("latin-1"), "text/csv")
    answer = owner_client.post(
        "/manage/invitations/bulk/", {"csv_text": "", "csv_file": upload, "role": "learner"}
    )
    assert answer.status_code == 422
    assert "not UTF-8" in answer.content.decode()


def test_inviting_past_the_seats_shows_the_limit(owner_client, org_a):
    org_a.plan = Plan.objects.create(slug=unique("p"), name="Solo", seats=1, sandbox_quota=1)
    org_a.save(update_fields=["plan"])
    answer = owner_client.post(
        "/manage/invitations/new/", {"email": "x@example.test", "role": "learner"}
    )
    assert answer.status_code == 422
    assert "All 1 seats of the plan are taken" in answer.content.decode()
    assert 'value="x@example.test"' in answer.content.decode()
    assert not Invitation.objects.exists()


def test_settings_bad_domain_keeps_the_saved_settings(owner_client, org_a):
    answer = owner_client.post(
        "/manage/settings/", {"name": "New name", "allowed_email_domains": "a b!"}
    )
    assert answer.status_code == 422
    assert "is not an email domain" in answer.content.decode()
    org_a.refresh_from_db()
    assert org_a.name == "Org A"


def test_audit_log_filters_and_bad_dates(owner_client, org_a, member_factory):
    learner = membership(member_factory(org_a, Role.LEARNER), org_a)
    owner_client.post(f"/manage/members/{learner.pk}/role/", {"role": "instructor"})
    invite(org_a, owner_client.owner)
    page = owner_client.get("/manage/audit/", {"action": "member."}).content.decode()
    assert page.count('data-testid="audit-row"') == 1
    assert "member.role_changed" in page
    bad = owner_client.get("/manage/audit/", {"since": "last tuesday"})
    assert bad.status_code == 422
    assert "is not a date" in bad.content.decode()


def test_public_home_lists_a_persons_organisations(site_client, org_a, org_b, member_factory):
    person = member_factory(org_a, Role.LEARNER)
    Membership.objects.create(user=person, organisation=org_b, role=Role.ADMIN)
    page = site_client(None, person).get("/").content.decode()
    assert f"//{org_a.slug}." in page
    assert f"//{org_b.slug}." in page
    assert "Create an organisation" in page
    assert "Sign up" in site_client().get("/").content.decode()


def test_password_change_keeps_the_session_and_refuses_a_wrong_old_password(
    site_client, org_a, member_factory
):
    member = member_factory(org_a, Role.LEARNER)
    client = site_client(org_a, member)
    assert "/accounts/password/change/" in client.get("/").content.decode()
    wrong = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": "not-it",
            "password1": "a-new-long-passphrase",
            "password2": "a-new-long-passphrase",
        },
    )
    assert wrong.status_code == 200
    assert "current password" in wrong.content.decode().lower()
    changed = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": PASSWORD,
            "password1": "a-new-long-passphrase",
            "password2": "a-new-long-passphrase",
        },
    )
    assert changed.status_code == 302
    member.refresh_from_db()
    assert member.check_password("a-new-long-passphrase")
    assert client.get("/").status_code == 200
