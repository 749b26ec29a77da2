"""Continuous checking: every frame the relay sends is also fed to the open steps' checks
of the enrolment whose lab it is, so a check passes the moment it holds, with no button.

The relay calls `frame_seen` (settings.LAB_FRAME_LISTENERS) in a thread after sending a
frame. What to check for a session is read from the database once and again only when
its progress changes (a version number in Redis, bumped after every progress write).
How long each condition has held is kept in Redis, not in this process, because the next
tick's frame may be read by another relay.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections
from django_tenants.utils import schema_context

from apps.progress.drills import drill_run_mitigated
from apps.progress.events import watch_version_key
from apps.progress.models import CheckResult, DrillRun, Enrolment, StepProgress, StepStatus
from apps.progress.services import (
    NotFound,
    check_result_record,
    enrolment_steps_sync,
    enrolment_tutorial,
)
from apps.scenarios.events import redis_prefix, relay_redis
from apps.tenants.errors import ApplicationError
from apps.tutorials.checks import TELEMETRY, StepChecker
from sandbox.catalog import SCENARIOS

log = logging.getLogger(__name__)
HELD_TTL_S = 3600
MAX_GAP_S = 3.5  # more than about three ticks without a frame breaks every hold
LAST_FRAME = "_last"


# A drill's signature, once it showed, gone this long and for this many frames in a row (a
# few missed reads must not pass for a fix) is mitigated.
DRILL_CLEAR_S = 10
DRILL_CLEAR_FRAMES = 8


@dataclass(frozen=True)
class DrillWatch:
    run_id: int
    scenario: str
    baseline: dict[str, float]


@dataclass(frozen=True)
class Plan:
    """What to watch in one lab session: the telemetry checks still to pass (ids are
    "<step>/<check>"), and the drills whose signature has not gone yet."""

    enrolment_id: int | None
    checks: list[dict[str, Any]] = field(default_factory=list)
    drills: list[DrillWatch] = field(default_factory=list)


# (version read from Redis, when read, plan). The version changes with progress; the age
# bounds what a missed version (Redis away at a commit) or a content edit can leave stale.
_plans: dict[tuple[str, int], tuple[Any, float, Plan]] = {}
PLAN_MAX_AGE_S = 30.0


def plan_read(session_id: int) -> Plan:
    drills = [
        DrillWatch(run.pk, run.drill.scenario, run.baseline)
        for run in DrillRun.objects.filter(
            lab_session_id=session_id,
            injected_at__isnull=False,
            mitigated_at__isnull=True,
            drill__ended_at__isnull=True,
        ).select_related("drill")
    ]
    enrolment = Enrolment.objects.filter(lab_session_id=session_id).first()
    if enrolment is None:
        return Plan(None, drills=drills)
    enrolment_steps_sync(enrolment=enrolment)  # the content may have changed since
    open_steps = set(
        StepProgress.objects.filter(enrolment=enrolment, status=StepStatus.OPEN).values_list(
            "step_slug", flat=True
        )
    )
    if not open_steps:
        return Plan(enrolment.pk, drills=drills)
    passed = set(
        CheckResult.objects.filter(enrolment=enrolment).values_list("step_slug", "check_id")
    )
    try:
        tutorial = enrolment_tutorial(enrolment)
    except NotFound:  # the tutorial was deleted under the learner: nothing left to check
        return Plan(enrolment.pk, drills=drills)
    checks = [
        {**check, "id": f"{step.slug}/{check['id']}"}
        for step in tutorial.steps.all()
        if step.slug in open_steps
        for check in step.checks
        if check["type"] in TELEMETRY and (step.slug, check["id"]) not in passed
    ]
    return Plan(enrolment.pk, checks, drills)


def _plan(schema_name: str, session_id: int) -> Plan:
    version = relay_redis().get(watch_version_key(schema_name, session_id))
    cached = _plans.get((schema_name, session_id))
    now = time.monotonic()
    if cached is not None and cached[0] == version and now - cached[1] < PLAN_MAX_AGE_S:
        return cached[2]
    with schema_context(schema_name):
        plan = plan_read(session_id)
    _plans[(schema_name, session_id)] = (version, now, plan)
    return plan


def held_key(schema_name: str, enrolment_id: int) -> str:
    return f"{redis_prefix()}:progress:held:{schema_name}:{enrolment_id}"


def drills_check(schema_name: str, session_id: int, plan: Plan, frame: dict[str, Any]) -> list[int]:
    """A drill is mitigated once its signature, having shown, has been gone for
    DRILL_CLEAR_S; recorded at the moment it went. Returns the runs recorded."""
    if not plan.drills:
        return []
    client = relay_redis()
    key = f"{redis_prefix()}:progress:drill:{schema_name}:{session_id}"
    state = {
        (k.decode() if isinstance(k, bytes) else k): float(v)
        for k, v in client.hgetall(key).items()
    }
    at = float(frame.get("at") or 0.0)
    figures = frame.get("figures") or {}
    done = []
    for drill in plan.drills:
        seen, gone, count = (f"{drill.run_id}:{k}" for k in ("seen", "gone", "frames"))
        if SCENARIOS[drill.scenario].signature.holds(figures, drill.baseline):
            state[seen] = at
            client.hset(key, seen, at)
            client.hdel(key, gone, count)
            continue
        if seen not in state:
            continue  # not visible yet: nothing to mitigate
        since = state.setdefault(gone, at)
        frames = int(state.get(count, 0)) + 1
        client.hset(key, mapping={gone: since, count: frames})
        if at - since >= DRILL_CLEAR_S and frames >= DRILL_CLEAR_FRAMES:
            with schema_context(schema_name):
                if drill_run_mitigated(
                    run_id=drill.run_id, at=datetime.fromtimestamp(since, tz=UTC)
                ):
                    done.append(drill.run_id)
    client.expire(key, HELD_TTL_S)
    if done:
        _plans.pop((schema_name, session_id), None)
    return done


def frame_check(schema_name: str, session_id: int, frame: dict[str, Any]) -> list[str]:
    """Feeds one frame to the session's open checks and drills; records the checks that
    pass. Returns the "<step>/<check>" ids recorded."""
    plan = _plan(schema_name, session_id)
    drills_check(schema_name, session_id, plan, frame)
    if plan.enrolment_id is None or not plan.checks:
        return []
    client = relay_redis()
    key = held_key(schema_name, plan.enrolment_id)
    held = {
        (k.decode() if isinstance(k, bytes) else k): float(v)
        for k, v in client.hgetall(key).items()
    }
    at = float(frame.get("at") or 0.0)
    if at - held.pop(LAST_FRAME, at) > MAX_GAP_S:
        held = {}  # frames went missing (the lab stopped, a sandbox hung): start again
    checker = StepChecker(plan.checks, held_since=dict(held))
    passed = checker.feed(frame)
    pipe = client.pipeline()
    pipe.delete(key)
    pipe.hset(key, LAST_FRAME, at)
    for check_id, since in checker.held_since.items():
        pipe.hset(key, check_id, since)
    pipe.expire(key, HELD_TTL_S)
    pipe.execute()
    recorded = []
    for check_id in passed:
        step_slug, _, own_id = check_id.partition("/")
        try:
            with schema_context(schema_name):
                result = check_result_record(
                    enrolment_id=plan.enrolment_id, step_slug=step_slug, check_id=own_id
                )
        except (NotFound, ApplicationError) as exc:  # content reloaded under the learner
            log.info("check not recorded", extra={"check": check_id, "reason": str(exc)})
            continue
        if result.created:
            recorded.append(check_id)
    if recorded:
        _plans.pop((schema_name, session_id), None)
    return recorded


def frame_seen(schema_name: str, session_id: int, frame: dict[str, Any]) -> None:
    """The relay's listener: never lets a failure here reach the relay."""
    close_old_connections()
    try:
        frame_check(schema_name, session_id, frame)
    except Exception:
        log.exception("checking a frame failed", extra={"session": session_id})


def plans_forget() -> None:
    """Drops every cached plan (tests: a fresh process's view)."""
    _plans.clear()
