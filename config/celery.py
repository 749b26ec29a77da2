"""The Celery app. Tasks carry the schema they were sent from and run inside it.

Celery processes name their settings in DJANGO_SETTINGS_MODULE (make dev and the
deployment manifests set it); this module sets no default, so importing the `config`
package never chooses settings for the process that imports it.
"""

from celery.signals import worker_init
from tenant_schemas_celery.app import CeleryApp

app = CeleryApp("sdlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _start_tracing(**_: object) -> None:
    # In the parent, before any fork: the SDK restarts its export thread in each child.
    from config.telemetry import telemetry_setup

    telemetry_setup(service_name="sdlab-worker", celery=True)
