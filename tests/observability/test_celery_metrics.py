"""Celery task outcomes, as deployed: a prefork worker whose tasks run in child processes,
each writing its figures to PROMETHEUS_MULTIPROC_DIR, and the worker's parent serving
their sum on CELERY_METRICS_PORT. Real tasks succeed and fail; the endpoint counts them."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from config.localservices import free_port
from tests.support.servers import ROOT, START_SECONDS, process_env, stop, wait_for

HEARTBEAT = "apps.tenants.tasks.platform_heartbeat"
EXPIRE = "apps.scenarios.tasks.lab_session_expire_task"


def task_counts(port: int) -> dict[tuple[str, str], float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (sample.labels["task"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "sdlab_celery_tasks"
        for sample in family.samples
        if sample.name == "sdlab_celery_tasks_total"
    }


@pytest.mark.worker
def test_a_prefork_worker_serves_the_outcomes_of_its_children(db, tmp_path):
    port = free_port()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")  # a previous run's leftovers
    node = f"metrics-{os.getpid()}-{time.monotonic_ns()}@localhost"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
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
        env=process_env(CELERY_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(directory)),
    )
    try:
        wait_for(
            lambda: app.control.ping(destination=[node], timeout=0.5) or worker.poll() is not None,
            "the worker to answer",
            START_SECONDS,
        )
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        for _ in range(4):
            app.send_task(HEARTBEAT, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        # missing its argument: the task raises TypeError in the child
        app.send_task(EXPIRE, args=(), queue=settings.CELERY_TASK_DEFAULT_QUEUE)

        def counted() -> dict[tuple[str, str], float]:
            counts = task_counts(port)
            done = counts.get((HEARTBEAT, "success"), 0) >= 4
            return counts if done and counts.get((EXPIRE, "failure"), 0) >= 1 else {}

        counts = wait_for(counted, "the outcomes on the worker's /metrics", 60)
        assert counts[(HEARTBEAT, "success")] == 4
        assert counts[(EXPIRE, "failure")] == 1
        assert counts.get((HEARTBEAT, "failure"), 0) == 0
        # the figures come from the children's files, the stale one is gone
        assert not (directory / "counter_999999.db").exists()
        assert any(directory.glob("counter_*.db"))
    finally:
        stop(worker)
