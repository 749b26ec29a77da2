"""The beat's housekeeping across organisations: sessions past their time or stuck, and
sandboxes no session owns any more (a crashed worker's, a deleted organisation's)."""

import logging
import re

from django_tenants.utils import get_public_schema_name, tenant_context

from apps.scenarios.backends import sandbox_backend
from apps.scenarios.models import ACTIVE_STATES, LabSession
from apps.scenarios.services import lab_sessions_sweep
from apps.tenants.models import Organisation

log = logging.getLogger(__name__)
SANDBOX_NAME = re.compile(r"^o(?P<organisation>\d+)-s(?P<session>\d+)$")


def sessions_sweep_all() -> dict[str, int]:
    totals: dict[str, int] = {}
    for organisation in Organisation.objects.exclude(schema_name=get_public_schema_name()):
        with tenant_context(organisation):
            for key, value in lab_sessions_sweep(organisation=organisation).items():
                totals[key] = totals.get(key, 0) + value
    return totals


def _owner_wants(organisation_id: int, session_id: int, sandbox_id: str) -> bool:
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        return False
    with tenant_context(organisation):
        session = LabSession.objects.filter(pk=session_id, state__in=ACTIVE_STATES).first()
    if session is None:
        return False
    recorded = (session.handle or {}).get("sandbox_id")
    # While it boots the session has no handle yet; once running, only its own sandbox.
    return recorded in (None, sandbox_id)


def sandboxes_reap() -> list[str]:
    """Stops every sandbox of the platform's backend that no active session owns."""
    backend = sandbox_backend()
    reaped = []
    for handle in backend.list():
        named = SANDBOX_NAME.match(handle.session_id or "")
        if named is None:
            continue  # not one the platform started: not ours to stop
        if _owner_wants(int(named["organisation"]), int(named["session"]), handle.sandbox_id):
            continue
        backend.stop(handle)
        reaped.append(handle.sandbox_id)
        log.warning("orphan sandbox stopped", extra={"sandbox": handle.sandbox_id})
    return reaped
