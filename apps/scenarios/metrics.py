"""Platform metrics of lab sessions (the relay's own are in `relay.py`).

Two kinds, for two reasons:

- What happens once (a start took so long, a start failed, a start was refused) is a
  counter or histogram observed where it happens, in whichever process that is; Prometheus
  adds the processes up.
- How many sessions are in each state is a fact held in PostgreSQL, shared by every
  process. A gauge moved on transitions would be per process and would drift with every
  restart or crashed worker, so the web process counts it from the database at scrape
  time instead (`LabSessionsCollector`): one query over the tenant schemas, active states
  only (the rows that can exist at once are bounded by the quotas). Every web replica
  reports the same figures: aggregate them with `max`, not `sum`.

Cardinality: an `organisation` label appears only on series of organisations that hold
sandboxes now or have been refused one, both bounded by real use of the quota.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from apps.scenarios.models import ACTIVE_STATES, LabSession
from apps.tenants.models import Organisation

log = logging.getLogger(__name__)

START_SECONDS = Histogram(
    "sdlab_lab_session_start_seconds",
    "From a learner asking for a lab to its sandbox running.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0),
)
PROVISIONS = Counter(
    "sdlab_lab_session_provisions",
    "Sandbox starts for lab sessions, by outcome (running, failed).",
    ["outcome"],
)
QUOTA_REFUSALS = Counter(
    "sdlab_lab_session_quota_refusals",
    "Lab starts refused because every sandbox of the organisation's plan was in use.",
    ["organisation"],
)
for _outcome in ("running", "failed"):  # both series exist from the start: ratios work at once
    PROVISIONS.labels(_outcome)


def lab_session_running(*, created_at: datetime | None, ready_at: datetime | None) -> None:
    PROVISIONS.labels("running").inc()
    if created_at is not None and ready_at is not None:
        START_SECONDS.observe(max(0.0, (ready_at - created_at).total_seconds()))


def lab_session_failed() -> None:
    PROVISIONS.labels("failed").inc()


def lab_session_quota_refused(*, organisation: Organisation) -> None:
    QUOTA_REFUSALS.labels(organisation.slug).inc()


class LabSessionsCollector(Collector):
    """Active lab sessions by state, counted in every organisation's schema at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # The names, without touching the database (registration asks for them).
        yield from self.families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state, by_organisation, overdue, quota = self.families()
        try:
            rows, quotas = lab_sessions_count()
        except DatabaseError:
            log.warning("lab session metrics: the database did not answer", exc_info=True)
            return
        totals = {str(state): 0 for state in ACTIVE_STATES}
        late = 0
        for slug, state, count, past_expiry in rows:
            totals[state] = totals.get(state, 0) + count
            late += past_expiry
            by_organisation.add_metric([slug, state], count)
        for state, count in totals.items():
            by_state.add_metric([state], count)
        overdue.add_metric([], late)
        for slug, allowed in quotas.items():
            quota.add_metric([slug], allowed)
        yield by_state
        yield by_organisation
        yield overdue
        yield quota

    @staticmethod
    def families() -> tuple[
        GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily
    ]:
        by_state = GaugeMetricFamily(
            "sdlab_lab_sessions",
            "Lab sessions holding (or about to hold) a sandbox, by state.",
            labels=["state"],
        )
        by_organisation = GaugeMetricFamily(
            "sdlab_lab_sessions_by_organisation",
            "Lab sessions holding a sandbox, by organisation and state (active ones only).",
            labels=["organisation", "state"],
        )
        overdue = GaugeMetricFamily(
            "sdlab_lab_sessions_overdue",
            "Active lab sessions past their expiry time: the sweep should have ended them.",
        )
        quota = GaugeMetricFamily(
            "sdlab_organisation_sandbox_quota",
            "Concurrent sandboxes the plan allows, for organisations holding sandboxes.",
            labels=["organisation"],
        )
        return by_state, by_organisation, overdue, quota


def lab_sessions_count() -> tuple[list[tuple[str, str, int, int]], dict[str, int]]:
    """(organisation slug, state, sessions, of which past expiry) for every organisation
    with active sessions, and those organisations' quotas: one query for all schemas."""
    organisations = list(
        Organisation.objects.exclude(schema_name=get_public_schema_name()).select_related("plan")
    )
    if not organisations:
        return [], {}
    # the sweep's clock, not the transaction's start (PostgreSQL's now())
    now = timezone.now()
    table = LabSession._meta.db_table
    quote = connection.ops.quote_name
    states = ", ".join(["%s"] * len(ACTIVE_STATES))
    parts, params = [], []
    for organisation in organisations:
        parts.append(
            f"SELECT %s, state, count(*), count(*) FILTER (WHERE expires_at < %s) "  # noqa: S608
            f"FROM {quote(organisation.schema_name)}.{quote(table)} "
            f"WHERE state IN ({states}) GROUP BY state"
        )
        params += [organisation.slug, now, *[str(s) for s in ACTIVE_STATES]]
    # a savepoint: a failed count (a schema dropped meanwhile) must not break the caller's
    # transaction
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = [(str(s), str(st), int(c), int(o)) for s, st, c, o in cursor.fetchall()]
    holding = {slug for slug, *_ in rows}
    quotas = {o.slug: o.sandbox_quota for o in organisations if o.slug in holding}
    return rows, quotas


_registered: list[LabSessionsCollector] = []


def lab_sessions_collector_register() -> None:
    """Adds the collector to the default registry once (the web process's /metrics)."""
    if not _registered:
        _registered.append(LabSessionsCollector())
        REGISTRY.register(_registered[0])
