"""The Celery app. Tasks carry the schema they were sent from and run inside it."""

import os

from celery.signals import worker_process_init
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = CeleryApp("sdlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _start_tracing(**_: object) -> None:
    from config.telemetry import telemetry_setup

    telemetry_setup(service_name="sdlab-worker", celery=True)
