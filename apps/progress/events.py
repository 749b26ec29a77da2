"""Progress events, sent after the write commits: to the learner's lab page, to the
organisation's instructors' dashboards, and to the check watcher (which re-reads what to
check when a session's progress changes)."""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.progress.models import DrillRun, Enrolment
from apps.scenarios.events import lab_session_group, redis_prefix, relay_redis
from apps.tenants.schemas import tenant_connection

WATCH_VERSION_TTL_S = 6 * 3600  # longer than any lab lasts


def progress_group(schema_name: str) -> str:
    """Every instructor dashboard of one organisation listens here."""
    return f"progress.{schema_name}"


def watch_version_key(schema_name: str, session_id: int) -> str:
    return f"{redis_prefix()}:progress:v:{schema_name}:{session_id}"


def progress_publish(enrolment: Enrolment, kind: str, **data: Any) -> None:
    payload = {
        "kind": kind,
        "enrolment": enrolment.pk,
        "learner": enrolment.learner_id,
        "tutorial": enrolment.tutorial_slug,
        **data,
    }
    _publish(enrolment.lab_session_id, payload, payload)


def drill_publish(run: DrillRun, kind: str, **data: Any) -> None:
    """The learner hears that something happened in their lab, never which scenario;
    instructors hear about the run."""
    learner = {"kind": kind, "drill_run": run.pk, **data}
    instructors = {
        "kind": kind,
        "drill": run.drill_id,
        "drill_run": run.pk,
        "learner": run.learner_id,
    }
    _publish(run.lab_session_id, learner, instructors)


def _publish(
    session_id: int | None, to_learner: dict[str, Any], to_instructors: dict[str, Any]
) -> None:
    """Sends after the commit: to the lab's viewers, to instructors, and a new version
    number for the check watcher to re-read what to check."""
    schema = tenant_connection().schema_name
    payload = to_learner

    def send() -> None:
        if session_id is not None:
            key = watch_version_key(schema, session_id)
            pipe = relay_redis().pipeline()
            pipe.incr(key)
            pipe.expire(key, WATCH_VERSION_TTL_S)
            pipe.execute()
        layer = get_channel_layer()
        if layer is None:
            return
        if session_id is not None:
            async_to_sync(layer.group_send)(
                lab_session_group(schema, session_id), {"type": "lab.progress", "progress": payload}
            )
        async_to_sync(layer.group_send)(
            progress_group(schema), {"type": "progress.update", "update": to_instructors}
        )

    # robust: a Redis hiccup must not turn a committed write into an error page (the check
    # watcher's plans also expire on their own)
    transaction.on_commit(send, robust=True)
