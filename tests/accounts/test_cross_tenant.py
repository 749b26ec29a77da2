"""Every tenant URL, collected from the URL conf (not a hand list), against every kind of
visitor: outsiders get 404, members without the role 403, and nobody sees another
organisation's data. A new view that declares no access fails here."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.invitations import invitation_create
from apps.accounts.models import ROLE_RANK, Membership, Role
from apps.progress.drills import drill_start
from apps.progress.services import enrolment_create
from apps.progress.teaching import cohort_create, cohort_members_add
from apps.scenarios.services import lab_session_start
from apps.tutorials.content import tutorial_read
from apps.tutorials.services import tutorial_files_save, tutorials_store
from tests.progress.conftest import TUTORIAL

# allauth's own pages (login, sign-up, password reset...) serve anyone by design; the
# API token page belongs to the person, not the organisation.
TUTORIALS = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"
PERSONAL = re.compile(r"^(account_|api-token$)")


@dataclass
class Route:
    name: str
    template: str
    callback: Any

    @property
    def api(self) -> bool:
        return hasattr(self.callback, "cls")

    @property
    def role(self) -> str | None:
        view = self.callback.cls if self.api else self.callback
        return getattr(view, "required_role", None)

    @property
    def object_level(self) -> bool:
        """The view also checks each object (whose lab it is) beyond the role."""
        view = self.callback.cls if self.api else self.callback
        return getattr(view, "object_level", False)

    @property
    def open(self) -> bool:
        return getattr(self.callback, "open_to_visitors", False) or bool(PERSONAL.match(self.name))

    def methods(self) -> list[str]:
        if self.api:
            return [
                m.upper()
                for m in ("get", "post", "patch", "put", "delete")
                if hasattr(self.callback.cls, m)
            ]
        return ["GET", "POST"]

    def path(self, pk: int) -> str:
        path = re.sub(r"<str:\w+>", "x" * 43, self.template)
        # a tutorial the world loads: the platform's, or for authoring the organisation's own
        own = self.template.startswith("authoring/")
        path = re.sub(r"<slug:\w+>", "our-runbook" if own else "slow-dependency", path)
        path = re.sub(r"<path:\w+>", "d-solo/x", path)
        return "/" + re.sub(r"<int:\w+>", str(pk), path)


def walk(patterns: list, prefix: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield Route(entry.name or "", prefix + str(entry.pattern), entry.callback)


ROUTES = list(walk(get_resolver("config.urls_tenant").url_patterns))
SCOPED = [r for r in ROUTES if not r.open]


def test_every_tenant_route_declares_who_may_use_it():
    undeclared = [r.template for r in SCOPED if r.role not in Role.values]
    assert not undeclared, f"tenant routes without a role: {undeclared}"
    assert len(SCOPED) >= 15  # the walk found the console and the API, not nothing


@pytest.fixture
def world(org_a, org_b, member_factory):
    """Org A with one member of each role and an invitation; Org B with its own owner."""
    members = {role: member_factory(org_a, role) for role in Role.values}
    owner_a = Membership.objects.get(user=members[Role.OWNER], organisation=org_a)
    invitation = invitation_create(actor=owner_a, email="secret-invitee@example.test").invitation
    outsider = member_factory(org_b, Role.OWNER)
    with schema_context("public"):
        tutorials_store(tutorials=[tutorial_read(TUTORIALS / "slow-dependency")])
    with tenant_context(org_a):
        lab = lab_session_start(
            organisation=org_a, learner=members[Role.LEARNER], scenario_set="secret-lab"
        )
        cohort = cohort_create(organisation=org_a, actor=members[Role.OWNER], name="secret-cohort")
        cohort_members_add(
            organisation=org_a,
            actor=members[Role.OWNER],
            cohort_id=cohort.pk,
            emails=[members[Role.LEARNER].email],
        )
        enrolment = enrolment_create(learner=members[Role.LEARNER], slug="slow-dependency")
        tutorial_files_save(
            organisation=org_a, actor=members[Role.OWNER], slug="our-runbook", files=TUTORIAL
        )
        drill = drill_start(
            organisation=org_a, actor=members[Role.OWNER], cohort_id=cohort.pk, scenario="cpu-spike"
        )
        assert drill.pk == cohort.pk  # the walk puts one id in every place of a path
    return {
        "members": members,
        "outsider": outsider,
        "invitation": invitation,
        "lab": lab,
        "cohort": cohort,
        "enrolment": enrolment,
    }


def call(client, method: str, path: str, api: bool):
    kwargs = {"content_type": "application/json", "data": "{}"} if method != "GET" else {}
    if api:
        kwargs["HTTP_ACCEPT"] = "application/json"
    return getattr(client, method.lower())(path, **kwargs)


def pk_for(route: Route, world) -> int:
    if "invitation" in route.template:
        return world["invitation"].pk
    if "labs" in route.template:
        return world["lab"].pk
    if "cohorts" in route.template:
        return world["cohort"].pk
    if "enrolments" in route.template:
        return world["enrolment"].pk
    return Membership.objects.filter(user=world["members"][Role.LEARNER]).get().pk


@pytest.mark.parametrize("route", SCOPED, ids=lambda r: r.template or "home")
def test_outsiders_get_404_and_members_below_the_role_403(route, world, org_a, site_client):
    path = route.path(pk_for(route, world))
    method = route.methods()[0]
    outsider = site_client(org_a, world["outsider"])
    assert call(outsider, method, path, route.api).status_code == 404, "a non-member"

    anonymous = call(site_client(org_a), method, path, route.api)
    if route.api:
        assert anonymous.status_code in (401, 403)
    else:
        assert anonymous.status_code == 302
        assert "/accounts/login/" in anonymous["Location"]

    for role, user in world["members"].items():
        status = call(site_client(org_a, user), method, path, route.api).status_code
        if ROLE_RANK[Role(role)] < ROLE_RANK[Role(route.role)]:
            assert status == 403, f"{role} on {path}"
        elif route.object_level and role != Role.LEARNER:
            # not the lab's learner: the view may still refuse (403), but never hides (404)
            assert status != 404, f"{role} on {path}: {status}"
        else:
            assert status not in (403, 404), f"{role} on {path}: {status}"


PK_ROUTES = [r for r in SCOPED if "<int:" in r.template]


@pytest.mark.parametrize("route", PK_ROUTES, ids=lambda r: r.template)
def test_another_organisations_objects_are_404_on_every_method(route, world, org_b, site_client):
    owner_b = site_client(org_b, world["outsider"])
    path = route.path(pk_for(route, world))
    before = list(Membership.objects.order_by("pk").values_list("pk", "role"))
    for method in route.methods():
        assert call(owner_b, method, path, route.api).status_code in (404, 405), method
    assert list(Membership.objects.order_by("pk").values_list("pk", "role")) == before
    world["invitation"].refresh_from_db()
    assert world["invitation"].revoked_at is None


GET_ROUTES = [r for r in SCOPED if "GET" in r.methods() and "<" not in r.template]


@pytest.mark.parametrize("route", GET_ROUTES, ids=lambda r: r.template or "home")
def test_no_page_shows_another_organisations_people(route, world, org_b, site_client):
    response = call(site_client(org_b, world["outsider"]), "GET", route.path(0), route.api)
    assert response.status_code in (200, 302, 405)  # 405: a form that only takes POST
    body = response.content.decode()
    for user in world["members"].values():
        assert user.email not in body
    assert "secret-invitee" not in body
    assert "secret-lab" not in body
    assert "secret-cohort" not in body


def test_a_learner_cannot_open_another_learners_lab(world, org_a, member_factory, site_client):
    other = member_factory(org_a, Role.LEARNER)
    path = f"/labs/{world['lab'].pk}/"
    assert site_client(org_a, other).get(path).status_code == 403
    assert site_client(org_a, world["members"][Role.INSTRUCTOR]).get(path).status_code == 200


def test_the_admin_console_and_admin_api_need_the_admin_role():
    admin_routes = [
        r
        for r in SCOPED
        if r.template.startswith(("manage/", "api/v1/"))
        and not r.template.startswith(
            ("api/v1/labs", "api/v1/enrolments", "api/v1/cohorts", "api/v1/scenarios")
        )
    ]
    assert admin_routes
    assert {r.role for r in admin_routes} == {Role.ADMIN}


def test_cohorts_drills_and_authoring_need_the_instructor_role():
    teaching = [
        r for r in SCOPED if r.template.startswith(("cohorts/", "authoring/", "api/v1/cohorts"))
    ]
    assert len(teaching) >= 15
    assert {r.role for r in teaching} == {Role.INSTRUCTOR}
