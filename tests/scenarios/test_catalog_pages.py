"""The scenario catalog learners browse: pages by category, search, one page per scenario
with its explanation, and the read-only API, checked against the committed schema."""

import dataclasses

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from sandbox.catalog import SCENARIOS
from sandbox.spec import CATEGORIES, Explanation
from tests.conftest import host_of
from tests.support.openapi import assert_conforms


@pytest.fixture
def learner(org_a, member_factory):
    return member_factory(org_a, Role.LEARNER)


@pytest.fixture
def browser(org_a, learner, site_client):
    return site_client(org_a, learner)


@pytest.fixture
def api(org_a, learner):
    client = APIClient(HTTP_HOST=host_of(org_a))
    client.force_authenticate(learner)
    return client


def ok(response):
    assert_conforms(response, site="tenant")
    return response


def test_the_catalog_lists_every_category_with_its_count(browser):
    page = browser.get("/catalog/")
    assert page.status_code == 200
    body = page.content.decode()
    for slug, title in CATEGORIES.items():
        assert f'href="/catalog/{slug}/"' in body
        assert title in body
    assert 'href="/catalog/"' in body  # the nav link


def test_a_category_page_lists_its_scenarios_only(browser):
    page = browser.get("/catalog/latency/").content.decode()
    latency = [s for s in SCENARIOS.values() if s.category == "latency"]
    assert latency
    for scenario in latency:
        assert f'href="/catalog/scenarios/{scenario.slug}/"' in page
    assert "/catalog/scenarios/cache-stampede/" not in page


def test_search_finds_by_title_slug_and_lesson(browser):
    by_title = browser.get("/catalog/", {"q": "stampede"}).content.decode()
    assert "/catalog/scenarios/cache-stampede/" in by_title
    by_slug = browser.get("/catalog/", {"q": "retry-storm"}).content.decode()
    assert "/catalog/scenarios/retry-storm/" in by_slug
    by_lesson = browser.get("/catalog/", {"q": "whole table"}).content.decode()
    assert "/catalog/scenarios/slow-db-query/" in by_lesson
    assert "/catalog/scenarios/cache-stampede/" not in by_lesson


def test_a_search_without_results_says_so(browser):
    page = browser.get("/catalog/", {"q": "zebra crossing"})
    assert page.status_code == 200
    assert "No scenario matches “zebra crossing”" in page.content.decode()


def test_a_scenario_page_explains_parameters_mitigations_and_signature(browser):
    scenario = SCENARIOS["connection-pool-exhaustion"]
    page = browser.get("/catalog/scenarios/connection-pool-exhaustion/")
    assert page.status_code == 200
    body = page.content.decode()
    for heading in ("What happens", "Why", "What to look at", "How real systems answer it"):
        assert f">{heading}</h2>" in body
    assert "Further reading" in body
    assert '<a href="https://github.com/brettwooldridge/HikariCP/wiki/About-Pool-Sizing">' in body
    assert "<code>hold_ms</code>" in body
    assert "between 10 and 5000 ms" in body  # the bounds and their unit
    assert "Tight timeouts" in body  # the mitigation, with what it does
    assert scenario.signature.description[1:] in body.replace("&#x27;", "'")
    assert "inventory.pool_waiting &gt; 1" in body


def test_explanations_are_markdown_without_raw_html(browser, monkeypatch):
    scenario = SCENARIOS["fixed-latency"]
    assert scenario.explanation is not None
    hostile = Explanation(
        what_happens="<script>alert(1)</script> and **bold**",
        why=scenario.explanation.why,
        what_to_look_at=scenario.explanation.what_to_look_at,
        how_systems_answer=scenario.explanation.how_systems_answer,
        further_reading=scenario.explanation.further_reading,
    )
    monkeypatch.setitem(
        SCENARIOS, "fixed-latency", dataclasses.replace(scenario, explanation=hostile)
    )
    body = browser.get("/catalog/scenarios/fixed-latency/").content.decode()
    assert "<script>" not in body
    assert "&lt;script&gt;" in body
    assert "<strong>bold</strong>" in body


def test_unknown_scenario_and_category_are_404(browser):
    assert browser.get("/catalog/scenarios/no-such-thing/").status_code == 404
    assert browser.get("/catalog/no-such-category/").status_code == 404


def test_a_non_member_gets_404(org_a, org_b, member_factory, site_client):
    outsider = site_client(org_a, member_factory(org_b, Role.OWNER))
    assert outsider.get("/catalog/").status_code == 404
    assert outsider.get("/catalog/scenarios/fixed-latency/").status_code == 404
    assert outsider.get("/api/v1/scenarios/", HTTP_ACCEPT="application/json").status_code == 404


def test_the_api_lists_filters_and_pages(api):
    everything = ok(api.get("/api/v1/scenarios/")).json()
    assert everything["count"] == len(SCENARIOS)
    first = everything["results"][0]
    assert {"slug", "explanation", "parameters", "metrics", "signature", "mitigations"} <= set(
        first
    )
    latency = ok(api.get("/api/v1/scenarios/", {"category": "latency"})).json()
    assert latency["count"] == sum(1 for s in SCENARIOS.values() if s.category == "latency")
    assert {s["category"] for s in latency["results"]} == {"latency"}
    found = ok(api.get("/api/v1/scenarios/", {"q": "stampede"})).json()
    assert [s["slug"] for s in found["results"]] == ["cache-stampede"]
    none = ok(api.get("/api/v1/scenarios/", {"q": "zebra crossing"})).json()
    assert none == {"count": 0, "next": None, "previous": None, "results": []}
    paged = ok(api.get("/api/v1/scenarios/", {"page": 99}))
    assert paged.status_code == 404
    refused = ok(api.get("/api/v1/scenarios/", {"category": "weather"}))
    assert refused.status_code == 422
    assert "category" in refused.json()["extra"]["fields"]


def test_the_api_reads_one_scenario(api):
    body = ok(api.get("/api/v1/scenarios/retry-storm/")).json()
    assert body["category"] == "resilience"
    assert [p["name"] for p in body["parameters"]] == ["delay_ms", "retries"]
    assert body["parameters"][0]["minimum"] == 50
    assert body["mitigations"][0]["slug"] == "retry-budget"
    assert body["mitigations"][0]["effect"]["expectations"]
    assert [s["heading"] for s in body["explanation_sections"]] == [
        "What happens",
        "Why",
        "What to look at",
        "How real systems answer it",
        "Further reading",
    ]
    missing = ok(api.get("/api/v1/scenarios/no-such-thing/"))
    assert missing.status_code == 404
