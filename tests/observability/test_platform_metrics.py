"""The platform's own lab-session metrics, in process: refusals counted per organisation,
sessions counted by state in every organisation's schema at scrape time (what each web
replica reports), overdue sessions found. Set up through the real services."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from apps.scenarios.metrics import LabSessionsCollector
from apps.scenarios.models import LabSession
from apps.scenarios.services import QuotaExceeded, lab_session_start, lab_session_stop
from apps.tenants.models import Plan
from tests.conftest import unique


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What a scrape of the collector shows: (name, labels) -> value."""
    registry = CollectorRegistry()
    registry.register(LabSessionsCollector())
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def start(organisation, member_factory):
    with tenant_context(organisation):
        return lab_session_start(
            organisation=organisation, learner=member_factory(organisation), scenario_set="x"
        )


def test_sessions_are_counted_by_state_in_every_organisation(org_a, org_b, member_factory):
    org_a.plan = Plan.objects.create(slug=unique("p"), name="Seven", seats=10, sandbox_quota=7)
    org_a.save()
    before = scrape()
    requested = ("sdlab_lab_sessions", (("state", "requested"),))
    first = start(org_a, member_factory)
    start(org_a, member_factory)
    start(org_b, member_factory)
    seen = scrape()
    assert seen[requested] == before.get(requested, 0) + 3
    by_org = "sdlab_lab_sessions_by_organisation"
    assert seen[(by_org, (("organisation", org_a.slug), ("state", "requested")))] == 2
    assert seen[(by_org, (("organisation", org_b.slug), ("state", "requested")))] == 1
    quota = "sdlab_organisation_sandbox_quota"
    assert seen[(quota, (("organisation", org_a.slug),))] == 7
    assert seen[(quota, (("organisation", org_b.slug),))] == 5
    assert seen[("sdlab_lab_sessions_overdue", ())] == before[("sdlab_lab_sessions_overdue", ())]

    # time passes beyond the first session's expiry, and no sweep runs
    with tenant_context(org_a):
        LabSession.objects.filter(pk=first.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    later = scrape()
    assert later[("sdlab_lab_sessions_overdue", ())] == seen[("sdlab_lab_sessions_overdue", ())] + 1

    # a finished session leaves the counts; an organisation with none leaves the labels
    with tenant_context(org_b):
        lab_session_stop(session_id=LabSession.objects.get().pk)
    ended = scrape()
    assert ended[requested] == seen[requested] - 1
    assert not any(org_b.slug in dict(labels).values() for _, labels in ended)


def test_the_web_registry_serves_the_counts(org_a, member_factory):
    import apps.scenarios.prometheus  # noqa: F401 (the web process's /metrics module registers it)

    start(org_a, member_factory)
    text = generate_latest(REGISTRY).decode()
    line = (
        f'sdlab_lab_sessions_by_organisation{{organisation="{org_a.slug}",state="requested"}} 1.0'
    )
    assert line in text


def test_a_quota_refusal_is_counted_for_its_organisation(org_a, member_factory):
    org_a.plan = Plan.objects.create(slug=unique("p"), name="One lab", seats=10, sandbox_quota=1)
    org_a.save()
    counted = {"organisation": org_a.slug}
    name = "sdlab_lab_session_quota_refusals_total"
    before = REGISTRY.get_sample_value(name, counted) or 0.0
    start(org_a, member_factory)
    with pytest.raises(QuotaExceeded):
        start(org_a, member_factory)
    assert REGISTRY.get_sample_value(name, counted) == before + 1
