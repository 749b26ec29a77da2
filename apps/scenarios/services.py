"""Writes to lab sessions. Every function runs in the current organisation's schema.

The life of a session: `lab_session_start` (a person asks; quota and the one-lab rule are
checked under a lock) -> `lab_session_provision` (a Celery task boots the sandbox) ->
running -> `lab_session_stop` or expiry -> `lab_session_teardown` (a task stops it).
Every step is idempotent: a task that runs twice, or after a crash, changes nothing twice.
State changes are published to the session's viewers after the transaction commits.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.scenarios.backends import sandbox_backend
from apps.scenarios.events import lab_session_publish, relay_register, relay_unregister
from apps.scenarios.metrics import (
    lab_session_failed,
    lab_session_quota_refused,
    lab_session_running,
)
from apps.scenarios.models import (
    ACTIVE_STATES,
    EXTEND_MAX_S,
    FINISHED_STATES,
    MAX_TTL_S,
    SANDBOX_TTL_S,
    LabSession,
    LabSessionState,
)
from apps.scenarios.pool import pool_claim
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tenants.schemas import tenant_connection
from sandbox.backends.base import SandboxHandle, SandboxSpec, SandboxStartError
from sandbox.catalog import SCENARIOS
from sandbox.client import SandboxClient, SandboxError
from sandbox.spec import ParameterError, parameters_validate

log = logging.getLogger(__name__)

QUOTA_LOCK_NAMESPACE = 0x5D1AB  # pg_advisory_xact_lock(namespace, organisation id)
MIN_TTL_S = 5 * 60


class QuotaExceeded(Conflict):
    """Every sandbox the organisation's plan allows is in use."""


def scenarios_validate(raw: Any) -> list[list[Any]]:
    """[[slug, {parameters}], ...] or [slug, ...]: each slug known, parameters in bounds."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValidationFailed("scenarios must be a list.", extra={"field": "scenarios"})
    checked: list[list[Any]] = []
    for index, item in enumerate(raw):
        slug, parameters = (item, {}) if isinstance(item, str) else (*tuple(item), {})[:2]
        scenario = SCENARIOS.get(str(slug))
        if scenario is None:
            raise ValidationFailed(
                f"Unknown scenario “{slug}”.", extra={"field": f"scenarios[{index}]"}
            )
        try:
            values = parameters_validate(scenario.parameters, parameters or {})
        except ParameterError as exc:
            raise ValidationFailed(
                f"{slug}: {exc.message}",
                extra={"field": f"scenarios[{index}].{exc.parameter}"},
            ) from None
        checked.append([scenario.slug, values])
    return checked


def _quota_lock(organisation: Organisation) -> None:
    """Serialises starts within one organisation for the rest of the transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [QUOTA_LOCK_NAMESPACE, organisation.pk]
        )


def lab_session_start(
    *,
    organisation: Organisation,
    learner: User,
    scenario_set: str,
    scenarios: Any = None,
    ttl_seconds: int | None = None,
) -> LabSession:
    """A learner asks for a lab. Refused, saying why, when they already run one or when
    the organisation's quota of concurrent sandboxes is used up."""
    scenario_set = (scenario_set or "").strip()
    if not scenario_set or len(scenario_set) > 100:
        raise ValidationFailed(
            "Choose a scenario set for the lab (1 to 100 characters).",
            extra={"field": "scenario_set"},
        )
    checked = scenarios_validate(scenarios)
    ttl = int(ttl_seconds or settings.LAB_SESSION_TTL_S)
    if not MIN_TTL_S <= ttl <= MAX_TTL_S:
        raise ValidationFailed(
            f"A lab lasts {MIN_TTL_S // 60} to {MAX_TTL_S // 60} minutes.",
            extra={"field": "ttl_seconds"},
        )
    with transaction.atomic():
        _quota_lock(organisation)
        mine = LabSession.objects.filter(learner=learner, state__in=ACTIVE_STATES).first()
        if mine is not None:
            raise Conflict(
                "You already have a lab running: stop it before starting another.",
                extra={"field": "learner", "lab_session": mine.pk},
            )
        active = LabSession.objects.filter(state__in=ACTIVE_STATES).count()
        if active >= organisation.sandbox_quota:
            lab_session_quota_refused(organisation=organisation)
            raise QuotaExceeded(
                f"All {organisation.sandbox_quota} lab sandboxes of {organisation.name} are "
                "in use. Try again when a lab ends, or ask an administrator for a larger plan.",
                extra={"field": "quota", "quota": organisation.sandbox_quota, "active": active},
            )
        session = LabSession.objects.create(
            learner=learner,
            scenario_set=scenario_set,
            scenarios=checked,
            ttl_seconds=ttl,
            backend=settings.SANDBOX_BACKEND,
            expires_at=timezone.now() + timedelta(seconds=ttl),
        )
        schema = tenant_connection().schema_name

        def provision() -> None:
            from apps.scenarios.tasks import lab_session_provision_task

            lab_session_provision_task.apply_async(
                args=(session.pk,), headers={"_schema_name": schema}
            )

        transaction.on_commit(provision)
        lab_session_publish(session)
    return session


def _spec(session: LabSession, organisation: Organisation) -> SandboxSpec:
    return SandboxSpec(
        session_id=session.sandbox_session_id(organisation.pk),
        scenarios=tuple((slug, dict(params)) for slug, params in session.scenarios),
        ttl_seconds=SANDBOX_TTL_S,
    )


def lab_session_provision(*, organisation: Organisation, session_id: int) -> LabSession | None:
    """Boots the session's sandbox (a Celery task's work). Only a session still asking
    for one gets one; a retry after a crash finds the state and does nothing twice."""
    with transaction.atomic():
        session = LabSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.state != LabSessionState.REQUESTED:
            return session
        session.state = LabSessionState.STARTING
        session.started_at = timezone.now()
        session.provision_attempts += 1
        session.save(update_fields=["state", "started_at", "provision_attempts", "updated_at"])
        lab_session_publish(session)
    backend = sandbox_backend()
    try:
        handle = _warm(session) or backend.start(_spec(session, organisation))
    except (SandboxStartError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        return _fail(session_id, f"The sandbox did not start: {reason}")
    with transaction.atomic():
        session = LabSession.objects.select_for_update().get(pk=session_id)
        if session.state != LabSessionState.STARTING:
            # Stopped or expired while it booted: the sandbox is not wanted any more.
            backend.stop(handle)
            return session
        session.state = LabSessionState.RUNNING
        session.handle = handle.as_dict()
        session.ready_at = timezone.now()
        session.save(update_fields=["state", "handle", "ready_at", "updated_at"])
        lab_session_publish(session)
        relay_register(session)
    lab_session_running(created_at=session.created_at, ready_at=session.ready_at)
    log.info("lab session running", extra={"lab_session": session_id})
    return session


def _warm(session: LabSession) -> SandboxHandle | None:
    """A sandbox from the warm pool with the session's scenarios switched on, if any."""
    handle = pool_claim(session.scenario_set)
    if handle is None:
        return None
    client = SandboxClient(handle.address, timeout=5.0)
    try:
        for slug, parameters in session.scenarios:
            client.scenario_enable(slug, parameters)
    except (SandboxError, OSError):
        sandbox_backend().stop(handle)
        return None  # boot a fresh one rather than hand over a half-configured sandbox
    return handle


def _fail(session_id: int, reason: str) -> LabSession | None:
    with transaction.atomic():
        session = LabSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.state in FINISHED_STATES:
            return session
        session.state = LabSessionState.FAILED
        session.failure_reason = reason
        session.ended_at = timezone.now()
        session.save(update_fields=["state", "failure_reason", "ended_at", "updated_at"])
        lab_session_publish(session)
    lab_session_failed()
    log.warning("lab session failed", extra={"lab_session": session_id, "reason": reason})
    return session


def _end(session: LabSession, state: str) -> LabSession:
    """Moves an active session towards its end; the sandbox goes in a task after commit."""
    if session.state in FINISHED_STATES or session.state == LabSessionState.STOPPING:
        return session
    had_sandbox = bool(session.handle)
    session.state = LabSessionState.STOPPING if had_sandbox else state
    if not had_sandbox:
        session.ended_at = timezone.now()
    session.save(update_fields=["state", "ended_at", "updated_at"])
    if had_sandbox:
        relay_unregister(session)
        schema = tenant_connection().schema_name
        final = state

        def teardown() -> None:
            from apps.scenarios.tasks import lab_session_teardown_task

            lab_session_teardown_task.apply_async(
                args=(session.pk, final), headers={"_schema_name": schema}
            )

        transaction.on_commit(teardown)
    lab_session_publish(session)
    return session


@transaction.atomic
def lab_session_stop(*, session_id: int, learner: User | None = None) -> LabSession:
    """The learner (or the platform, with no learner) ends the lab."""
    session = LabSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None or (learner is not None and session.learner_id != learner.pk):
        raise ValidationFailed("No such lab session.", extra={"field": "lab_session"})
    return _end(session, LabSessionState.STOPPED)


def lab_session_teardown(*, session_id: int, final_state: str) -> LabSession | None:
    """Stops the sandbox (idempotent: the backend's stop is) and records the end."""
    session = LabSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    if session.handle:
        sandbox_backend().stop(SandboxHandle.from_dict(session.handle))
    with transaction.atomic():
        session = LabSession.objects.select_for_update().get(pk=session_id)
        if session.state == LabSessionState.STOPPING:
            session.state = final_state
            session.ended_at = timezone.now()
            session.save(update_fields=["state", "ended_at", "updated_at"])
            lab_session_publish(session)
    return session


@transaction.atomic
def lab_session_extend(*, session_id: int, learner: User, seconds: int = 1800) -> LabSession:
    session = LabSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None or session.learner_id != learner.pk:
        raise ValidationFailed("No such lab session.", extra={"field": "lab_session"})
    if session.state != LabSessionState.RUNNING:
        raise Conflict(f"Only a running lab can be extended; this one is {session.state}.")
    if not 60 <= int(seconds) <= EXTEND_MAX_S:
        raise ValidationFailed(
            f"Extend by 1 to {EXTEND_MAX_S // 60} minutes.", extra={"field": "seconds"}
        )
    now = timezone.now()
    assert session.expires_at is not None  # noqa: S101 (set at creation)
    latest = (session.ready_at or now) + timedelta(seconds=MAX_TTL_S)
    if session.expires_at >= latest:
        raise Conflict(f"A lab lasts at most {MAX_TTL_S // 3600} hours.")
    session.expires_at = min(max(session.expires_at, now) + timedelta(seconds=seconds), latest)
    session.expiry_warned_at = None
    session.save(update_fields=["expires_at", "expiry_warned_at", "updated_at"])
    lab_session_publish(session)
    return session


@transaction.atomic
def lab_session_expire(*, session_id: int) -> LabSession | None:
    """Ends a session past its time; a finished or missing one is left as it is."""
    session = LabSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None or session.state in FINISHED_STATES:
        return session
    log.info("lab session expired", extra={"lab_session": session_id})
    return _end(session, LabSessionState.EXPIRED)


def lab_sessions_sweep(*, organisation: Organisation) -> dict[str, int]:
    """The beat's pass over one organisation: warn before expiry, expire what is past it,
    fail what has been starting too long (its worker died)."""
    now = timezone.now()
    counts = {"warned": 0, "expired": 0, "stuck": 0}
    warn_at = now + timedelta(seconds=settings.LAB_SESSION_WARN_BEFORE_S)
    for session in LabSession.objects.filter(
        state=LabSessionState.RUNNING,
        expires_at__lte=warn_at,
        expires_at__gt=now,
        expiry_warned_at__isnull=True,
    ):
        LabSession.objects.filter(pk=session.pk).update(expiry_warned_at=now)
        lab_session_publish(session, event="expiry_warning")
        counts["warned"] += 1
    for pk in LabSession.objects.filter(state__in=ACTIVE_STATES, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        lab_session_expire(session_id=pk)
        counts["expired"] += 1
    stuck_before = now - timedelta(seconds=settings.LAB_PROVISION_TIMEOUT_S)
    for pk in LabSession.objects.filter(
        state=LabSessionState.STARTING, started_at__lt=stuck_before
    ).values_list("pk", flat=True):
        _fail(pk, "The sandbox took too long to start (its worker may have stopped). Try again.")
        counts["stuck"] += 1
    stopping_before = now - timedelta(seconds=settings.LAB_PROVISION_TIMEOUT_S)
    for pk in LabSession.objects.filter(
        state=LabSessionState.STOPPING, updated_at__lt=stopping_before
    ).values_list("pk", flat=True):
        lab_session_teardown(session_id=pk, final_state=LabSessionState.STOPPED)
    return counts
