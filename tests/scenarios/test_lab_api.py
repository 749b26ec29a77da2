"""The labs API: start, read, stop, extend, with the one error envelope and the schema."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.scenarios.models import LabSession
from apps.tenants.models import Plan
from tests.conftest import host_of, unique
from tests.support.openapi import assert_conforms


def api_for(organisation, user) -> APIClient:
    client = APIClient(HTTP_HOST=host_of(organisation))
    client.force_authenticate(user)
    return client


def ok(response):
    assert_conforms(response, site="tenant")
    return response


@pytest.fixture
def learner(org_a, member_factory):
    return member_factory(org_a, Role.LEARNER)


def test_start_read_and_stop_a_lab(org_a, learner):
    api = api_for(org_a, learner)
    started = ok(
        api.post(
            "/api/v1/labs/",
            {"scenario_set": "intro", "scenarios": ["fixed-latency"]},
            format="json",
        )
    )
    assert started.status_code == 201
    body = started.json()
    assert body["state"] == "requested"
    assert body["scenarios"][0][0] == "fixed-latency"
    again = ok(api.post("/api/v1/labs/", {"scenario_set": "intro"}, format="json"))
    assert again.status_code == 409
    assert "already have a lab running" in again.json()["message"]
    listed = ok(api.get("/api/v1/labs/")).json()
    assert [lab["id"] for lab in listed["results"]] == [body["id"]]
    read = ok(api.get(f"/api/v1/labs/{body['id']}/"))
    assert read.json()["learner"] == learner.email
    stopped = ok(api.post(f"/api/v1/labs/{body['id']}/stop/"))
    assert stopped.json()["state"] == "stopped"
    not_running = ok(
        api.post(f"/api/v1/labs/{body['id']}/extend/", {"seconds": 600}, format="json")
    )
    assert not_running.status_code == 409


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"scenario_set": "x", "scenarios": ["nope"]}, "scenarios[0]"),
        (
            {"scenario_set": "x", "scenarios": [["fixed-latency", {"delay_ms": 0}]]},
            "scenarios[0].delay_ms",
        ),
        ({"scenario_set": "x", "ttl_seconds": 5}, "ttl_seconds"),
    ],
)
def test_bad_input_names_the_field(org_a, learner, payload, field):
    answer = ok(api_for(org_a, learner).post("/api/v1/labs/", payload, format="json"))
    assert answer.status_code == 422
    assert answer.json()["extra"]["field"] == field
    assert not LabSession.objects.exists()


def test_quota_refusal_says_why(org_a, member_factory):
    org_a.plan = Plan.objects.create(slug=unique("p"), name="One lab", seats=10, sandbox_quota=1)
    org_a.save(update_fields=["plan"])
    first, second = member_factory(org_a), member_factory(org_a)
    assert (
        api_for(org_a, first)
        .post("/api/v1/labs/", {"scenario_set": "x"}, format="json")
        .status_code
        == 201
    )
    refused = ok(api_for(org_a, second).post("/api/v1/labs/", {"scenario_set": "x"}, format="json"))
    assert refused.status_code == 409
    assert refused.json()["extra"] == {"field": "quota", "quota": 1, "active": 1}


def test_instructors_read_but_do_not_drive_and_classmates_do_neither(
    org_a, learner, member_factory
):
    lab = api_for(org_a, learner).post("/api/v1/labs/", {"scenario_set": "x"}, format="json").json()
    instructor = api_for(org_a, member_factory(org_a, Role.INSTRUCTOR))
    assert ok(instructor.get(f"/api/v1/labs/{lab['id']}/")).status_code == 200
    assert ok(instructor.get("/api/v1/labs/?everyone=true")).json()["count"] == 1
    assert ok(instructor.post(f"/api/v1/labs/{lab['id']}/stop/")).status_code == 403
    classmate = api_for(org_a, member_factory(org_a, Role.LEARNER))
    assert ok(classmate.get(f"/api/v1/labs/{lab['id']}/")).status_code == 403
    assert ok(classmate.get("/api/v1/labs/?everyone=true")).json()["count"] == 0
