"""A real Celery worker process runs a task inside the schema it was sent for."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from apps.scenarios.models import LabSession, LabSessionState
from apps.scenarios.services import lab_session_request
from apps.scenarios.tasks import lab_session_expire_task
from config.celery import app
from tests.conftest import database_url_of_test_db, make_member

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[str]:
    """Starts `celery worker` on this test process's own queue; stops it by its PID."""
    node = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--queues",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--hostname",
            node,
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not app.control.ping(destination=[node], timeout=0.5):
            assert process.poll() is None, f"celery worker exited with {process.returncode}"
            assert time.monotonic() < deadline, "celery worker did not answer a ping"
        yield node
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.worker
def test_task_sent_for_an_organisation_writes_into_its_schema(
    committed_organisations, celery_worker
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    with tenant_context(org_a):
        session_a = lab_session_request(learner=make_member(org_a), scenario_set="retry-storm")
    with tenant_context(org_b):
        session_b = lab_session_request(learner=make_member(org_b), scenario_set="retry-storm")
    # Each schema has its own sequence: both rows carry the same id.
    assert session_a.pk == session_b.pk

    with tenant_context(org_a):
        lab_session_expire_task.delay(session_a.pk)

    def expired_in_a() -> bool:
        with tenant_context(org_a):
            return LabSession.objects.get(pk=session_a.pk).state == LabSessionState.EXPIRED

    wait_for(expired_in_a, "the task to expire A's session")
    with tenant_context(org_b):
        assert LabSession.objects.get(pk=session_b.pk).state == LabSessionState.REQUESTED
