"""Writes to lab sessions. Every function runs in the current organisation's schema."""

import logging

from django.db import transaction

from apps.accounts.models import User
from apps.scenarios.models import FINISHED_STATES, LabSession, LabSessionState
from apps.tenants.errors import ValidationFailed

log = logging.getLogger(__name__)


def lab_session_request(*, learner: User, scenario_set: str) -> LabSession:
    scenario_set = (scenario_set or "").strip()
    if not scenario_set:
        raise ValidationFailed(
            "Choose a scenario set for the lab.", extra={"field": "scenario_set"}
        )
    return LabSession.objects.create(learner=learner, scenario_set=scenario_set)


@transaction.atomic
def lab_session_expire(*, session_id: int) -> LabSession | None:
    """Marks a session expired; a finished or missing session is left as it is (idempotent)."""
    session = LabSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None or session.state in FINISHED_STATES:
        return session
    session.state = LabSessionState.EXPIRED
    session.save(update_fields=["state", "updated_at"])
    log.info("lab session expired", extra={"lab_session": session_id})
    return session
