from celery import shared_task

from apps.scenarios.services import lab_session_expire


@shared_task(name="apps.scenarios.tasks.lab_session_expire_task", ignore_result=True)
def lab_session_expire_task(session_id: int) -> None:
    """Runs in the schema of the organisation the task was sent for."""
    lab_session_expire(session_id=session_id)
