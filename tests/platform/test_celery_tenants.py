"""A real Celery worker process runs a task inside the schema it was sent for."""

import pytest
from django_tenants.utils import tenant_context

from apps.scenarios.models import LabSession, LabSessionState
from apps.scenarios.services import lab_session_start, lab_session_stop
from apps.scenarios.tasks import lab_session_expire_task, lab_sessions_sweep_task
from tests.conftest import make_member
from tests.support.otlp import otlp_receiver
from tests.support.servers import celery_worker, wait_for

TASK_SPAN = "run/apps.scenarios.tasks.lab_sessions_sweep_task"


def state_in(organisation, session_id: int) -> str:
    with tenant_context(organisation):
        return LabSession.objects.get(pk=session_id).state


@pytest.mark.worker
def test_task_sent_for_an_organisation_writes_into_its_schema(
    committed_organisations, sandbox_root
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    with tenant_context(org_a):
        session_a = lab_session_start(
            organisation=org_a, learner=make_member(org_a), scenario_set="retry-storm"
        )
    # Each schema has its own sequence: both rows carry the same id.
    with tenant_context(org_b):
        session_b = lab_session_start(
            organisation=org_b, learner=make_member(org_b), scenario_set="retry-storm"
        )
    assert session_a.pk == session_b.pk

    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        with tenant_context(org_a):
            lab_session_expire_task.delay(session_a.pk)
        wait_for(
            lambda: state_in(org_a, session_a.pk) == LabSessionState.EXPIRED,
            "A's session to expire",
        )
        wait_for(
            lambda: state_in(org_b, session_b.pk) == LabSessionState.RUNNING,
            "B's session to run",
        )
        with tenant_context(org_b):
            lab_session_stop(session_id=session_b.pk)
        wait_for(
            lambda: state_in(org_b, session_b.pk) == LabSessionState.STOPPED,
            "B's session to stop",
        )


@pytest.mark.worker
def test_worker_traces_its_tasks_over_otlp_when_switched_on(committed_organisations):
    org_a = committed_organisations("Org A")
    with (
        otlp_receiver() as receiver,
        celery_worker(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        ),
    ):
        with tenant_context(org_a):
            lab_sessions_sweep_task.delay()
        wait_for(
            lambda: TASK_SPAN in receiver.span_names(), "the task's span to reach the receiver"
        )

    spans = [s for s in receiver.spans if s["name"] == TASK_SPAN]
    assert spans[0]["service"] == "sdlab-worker"
