"""Thin Celery tasks of progress: each calls one service, in the schema of the
organisation it was sent for (tenant-schemas-celery), and is safe to run twice."""

from celery import shared_task

from apps.progress.drills import drill_run_inject


@shared_task(name="apps.progress.tasks.drill_run_inject_task", ignore_result=True)
def drill_run_inject_task(run_id: int) -> None:
    drill_run_inject(run_id=run_id)
