"""Thin Celery tasks: each calls one service, in the schema of the organisation it was
sent for (tenant-schemas-celery), and is safe to run twice."""

from celery import shared_task
from django.db import connection

from apps.scenarios.services import (
    lab_session_expire,
    lab_session_provision,
    lab_session_teardown,
)


@shared_task(name="apps.scenarios.tasks.lab_session_provision_task", ignore_result=True)
def lab_session_provision_task(session_id: int) -> None:
    # tenant-schemas-celery has set the connection to the organisation the task was sent for
    lab_session_provision(organisation=getattr(connection, "tenant"), session_id=session_id)  # noqa: B009


@shared_task(name="apps.scenarios.tasks.lab_session_teardown_task", ignore_result=True)
def lab_session_teardown_task(session_id: int, final_state: str) -> None:
    lab_session_teardown(session_id=session_id, final_state=final_state)


@shared_task(name="apps.scenarios.tasks.lab_session_expire_task", ignore_result=True)
def lab_session_expire_task(session_id: int) -> None:
    lab_session_expire(session_id=session_id)


@shared_task(name="apps.scenarios.tasks.lab_sessions_sweep_task", ignore_result=True)
def lab_sessions_sweep_task() -> None:
    """Beat: every organisation's sessions swept, then orphan sandboxes reaped."""
    from apps.scenarios.reaper import sandboxes_reap, sessions_sweep_all

    sessions_sweep_all()
    sandboxes_reap()


@shared_task(name="apps.scenarios.tasks.lab_pool_fill_task", ignore_result=True)
def lab_pool_fill_task() -> None:
    from apps.scenarios.pool import pool_fill

    pool_fill()
