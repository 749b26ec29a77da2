"""Lab session events, sent to the session's viewers after the transaction commits."""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.scenarios.models import LabSession
from apps.tenants.schemas import tenant_connection


def lab_session_group(schema_name: str, session_id: int) -> str:
    return f"lab.{schema_name}.{session_id}"


def lab_session_publish(session: LabSession, event: str = "state") -> None:
    """Queues the session's state for its viewers; sent only if the write commits."""
    payload: dict[str, Any] = {"event": event, **session.describe()}
    group = lab_session_group(tenant_connection().schema_name, session.pk)

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": "lab.event", "event": payload})

    transaction.on_commit(send)
