"""The Celery app. Tasks carry the schema they were sent from and run inside it.

Celery processes name their settings in DJANGO_SETTINGS_MODULE (make dev and the
deployment manifests set it); this module sets no default, so importing the `config`
package never chooses settings for the process that imports it.

Task outcomes are counted here (`sdlab_celery_tasks_total{task,outcome}` and run times)
and served on `CELERY_METRICS_PORT` when it is set. Tasks run in the pool's child
processes: with `PROMETHEUS_MULTIPROC_DIR` set (the deployment sets it for prefork
workers) every child writes its figures there and the worker's parent serves their sum;
without it (a `--pool solo` worker) the one process serves its own registry.
"""

import os
import time
from pathlib import Path
from typing import Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_revoked,
    task_success,
    worker_init,
    worker_process_shutdown,
)
from prometheus_client import Counter, Histogram
from tenant_schemas_celery.app import CeleryApp

app = CeleryApp("sdlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

TASKS = Counter(
    "sdlab_celery_tasks",
    "Celery tasks finished, by task and outcome (success, failure, retry, revoked, rejected).",
    ["task", "outcome"],
)
TASK_SECONDS = Histogram(
    "sdlab_celery_task_seconds",
    "Run time of a Celery task, whatever its outcome.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
_started: dict[str, float] = {}


def _task_name(sender: Any, request: Any = None) -> str:
    # Only names of registered tasks become labels: the label stays bounded.
    name = getattr(sender, "name", None) or getattr(request, "task", None)
    return str(name) if isinstance(name, str) and name in app.tasks else "unregistered"


@task_success.connect
def _count_success(sender: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender), "success").inc()


@task_failure.connect
def _count_failure(sender: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender), "failure").inc()


@task_retry.connect
def _count_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender, request), "retry").inc()


@task_revoked.connect
def _count_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender, request), "revoked").inc()


@task_rejected.connect
def _count_rejected(message: Any = None, **_: Any) -> None:
    task = app.tasks.get((getattr(message, "headers", None) or {}).get("task", ""))
    TASKS.labels(_task_name(task), "rejected").inc()


@task_prerun.connect
def _time_start(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@task_postrun.connect
def _time_end(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    began = _started.pop(task_id or "", None)
    if began is not None:
        TASK_SECONDS.labels(_task_name(sender)).observe(time.monotonic() - began)


@worker_init.connect
def _start_tracing(**_: object) -> None:
    # In the parent, before any fork: the SDK restarts its export thread in each child.
    from config.telemetry import telemetry_setup

    telemetry_setup(service_name="sdlab-worker", celery=True)


@worker_init.connect
def _serve_metrics(**_: object) -> None:
    """The worker's /metrics on CELERY_METRICS_PORT (METRICS_ADDR, loopback by default)."""
    port = os.environ.get("CELERY_METRICS_PORT", "")
    if not port:
        return
    from prometheus_client import CollectorRegistry, start_http_server

    addr = os.environ.get("METRICS_ADDR", "127.0.0.1")
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not directory:
        start_http_server(int(port), addr=addr)
        return
    from prometheus_client import multiprocess

    # The figures of a previous run of this worker would be added to this one's.
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(int(port), addr=addr, registry=registry)


@worker_process_shutdown.connect
def _child_gone(pid: int | None = None, **_: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
