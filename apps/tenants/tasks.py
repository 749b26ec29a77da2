import logging

from celery import shared_task
from django.utils import timezone

log = logging.getLogger(__name__)


@shared_task(name="apps.tenants.tasks.platform_heartbeat", ignore_result=True)
def platform_heartbeat() -> str:
    """Beat's pulse: proves in the logs that beat schedules and workers run tasks."""
    now = timezone.now().isoformat()
    log.info("heartbeat", extra={"at": now})
    return now
