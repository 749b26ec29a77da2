"""The beat's housekeeping across organisations: sessions past their time or stuck, and
sandboxes no session owns any more (a crashed worker's, a deleted organisation's)."""

import logging
import re
import time

from django.conf import settings
from django_tenants.utils import get_public_schema_name, tenant_context

from apps.scenarios.backends import sandbox_backend
from apps.scenarios.models import ACTIVE_STATES, LabSession
from apps.scenarios.pool import POOL_PREFIX, pool_members
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


def _claimed_sandboxes() -> set[str]:
    """Sandbox ids that active sessions hold (a claimed warm sandbox keeps its pool name)."""
    held: set[str] = set()
    for organisation in Organisation.objects.exclude(schema_name=get_public_schema_name()):
        with tenant_context(organisation):
            for handle in LabSession.objects.filter(state__in=ACTIVE_STATES).values_list(
                "handle", flat=True
            ):
                if handle and handle.get("sandbox_id"):
                    held.add(handle["sandbox_id"])
    return held


def sandboxes_reap() -> list[str]:
    """Stops every sandbox of the platform's backend that no active session owns, and
    warm sandboxes that are neither waiting in a pool nor held by a session."""
    backend = sandbox_backend()
    reaped = []
    pooled: set[str] | None = None
    held: set[str] | None = None
    for handle in backend.list():
        if (handle.session_id or "").startswith(POOL_PREFIX):
            pooled = pool_members() if pooled is None else pooled
            held = _claimed_sandboxes() if held is None else held
            if handle.sandbox_id in pooled or handle.sandbox_id in held:
                continue
            age = time.time() - float(handle.details.get("started_at") or 0)
            if age < settings.LAB_PROVISION_TIMEOUT_S:
                continue  # just started: about to be pushed into its pool, or claimed
        else:
            named = SANDBOX_NAME.match(handle.session_id or "")
            if named is None:
                continue  # not one the platform started: not ours to stop
            if _owner_wants(int(named["organisation"]), int(named["session"]), handle.sandbox_id):
                continue
        backend.stop(handle)
        reaped.append(handle.sandbox_id)
        log.warning("orphan sandbox stopped", extra={"sandbox": handle.sandbox_id})
    return reaped
