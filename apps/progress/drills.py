"""Incident drills: an instructor pushes a hidden scenario into every running lab of a
cohort; each learner says when they found it (time to detect) and the check watcher sees
its signature go (time to mitigate).

The scenario is hidden from the learner's lab page: the relay leaves it out of their
frames (scenario list, its metrics, its events), so they find it from the symptoms, as in
a real incident.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import audit_record
from apps.progress.events import drill_publish
from apps.progress.models import CohortMember, Drill, DrillRun
from apps.progress.services import NotFound
from apps.progress.teaching import cohort_get
from apps.scenarios.events import (
    lab_notice_clear,
    lab_notice_set,
    lab_session_hide,
    lab_session_unhide,
)
from apps.scenarios.models import LabSession, LabSessionState
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Organisation
from apps.tenants.schemas import tenant_connection
from sandbox.catalog import SCENARIOS
from sandbox.client import SandboxClient, SandboxError
from sandbox.spec import ParameterError, parameters_validate

log = logging.getLogger(__name__)
DRILL_MESSAGE = (
    "Incident drill: something just went wrong in your shop. Find what it is from the "
    "telemetry, say so, then fix it."
)


def _checked(scenario: str, parameters: Any) -> dict[str, Any]:
    spec = SCENARIOS.get(scenario)
    if spec is None:
        raise ValidationFailed(f"Unknown scenario “{scenario}”.", extra={"field": "scenario"})
    if not isinstance(parameters, dict):
        raise ValidationFailed(
            "Parameters must be an object of names and values.", extra={"field": "parameters"}
        )
    try:
        return parameters_validate(spec.parameters, parameters)
    except ParameterError as exc:
        raise ValidationFailed(
            f"{scenario}: {exc.message}", extra={"field": f"parameters.{exc.parameter}"}
        ) from None


def drill_start(
    *,
    organisation: Organisation,
    actor: User,
    cohort_id: int,
    scenario: str,
    parameters: Any = None,
) -> Drill:
    """Starts a drill on the cohort: every member gets a run; the labs that are running
    get the scenario now (hidden), at the load that makes it visible."""
    values = _checked(scenario, parameters if parameters is not None else {})
    cohort = cohort_get(cohort_id=cohort_id)
    running = Conflict(
        "A drill is already running for this cohort: end it first.", extra={"field": "cohort"}
    )
    if Drill.objects.filter(cohort=cohort, ended_at__isnull=True).exists():
        raise running
    learners = list(CohortMember.objects.filter(cohort=cohort).values_list("learner_id", flat=True))
    if not learners:
        raise ValidationFailed("The cohort has no members.", extra={"field": "cohort"})
    labs = {
        s.learner_id: s
        for s in LabSession.objects.filter(learner_id__in=learners, state=LabSessionState.RUNNING)
    }
    with transaction.atomic():
        try:
            with transaction.atomic():
                drill = Drill.objects.create(
                    cohort=cohort, scenario=scenario, parameters=values, started_by=actor
                )
        except IntegrityError:  # started by another instructor a moment ago
            raise running from None
        DrillRun.objects.bulk_create(
            DrillRun(
                drill=drill,
                learner_id=learner,
                lab_session=labs.get(learner),
                failure="" if learner in labs else "no lab running when the drill started",
            )
            for learner in learners
        )
        audit_record(
            organisation=organisation,
            actor=actor,
            action="cohort.drill_start",
            target=cohort.name,
            after={"scenario": scenario, "parameters": values, "labs": len(labs)},
        )
        schema = tenant_connection().schema_name
        runs = list(
            DrillRun.objects.filter(drill=drill, lab_session__isnull=False).values_list(
                "pk", flat=True
            )
        )

        def inject() -> None:  # one task a lab: a cohort's labs are reached at once
            from apps.progress.tasks import drill_run_inject_task

            for run_id in runs:
                drill_run_inject_task.apply_async(args=(run_id,), headers={"_schema_name": schema})

        transaction.on_commit(inject)
    return drill


def drill_run_inject(*, run_id: int) -> DrillRun | None:
    """Puts the drill's scenario into one learner's lab (a task's work). Twice is once:
    a run already injected, or whose drill ended, is left alone."""
    run = DrillRun.objects.select_related("drill", "lab_session").filter(pk=run_id).first()
    if run is None or run.injected_at is not None or run.drill.ended_at is not None:
        return run
    session = run.lab_session
    if session is None or session.state != LabSessionState.RUNNING:
        DrillRun.objects.filter(pk=run.pk).update(failure="the lab ended before the drill began")
        return run
    _inject(run, run.drill.scenario, run.drill.parameters)
    return run


def _inject(run: DrillRun, scenario: str, parameters: dict[str, Any]) -> None:
    session = run.lab_session
    if session is None:
        return
    schema = tenant_connection().schema_name
    client = SandboxClient(session.handle.get("address", ""), timeout=3.0)
    lab_session_hide(schema, session.pk, scenario)  # hidden before it can show in a frame
    try:
        client.load(rate_rps=SCENARIOS[scenario].load_rps)
        baseline = client.figures()  # what the signature is measured against
        client.scenario_enable(scenario, parameters)
    except (OSError, SandboxError) as exc:
        lab_session_unhide(schema, session.pk, scenario)
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        DrillRun.objects.filter(pk=run.pk).update(failure=f"the lab did not take it: {reason}")
        log.info("drill injection failed", extra={"run": run.pk, "error": reason})
        return
    now = timezone.now()
    DrillRun.objects.filter(pk=run.pk).update(injected_at=now, baseline=baseline)
    run.injected_at = now
    notice = {
        "kind": "drill",
        "drill_run": run.pk,
        "message": DRILL_MESSAGE,
        "action": {
            "label": "I found the incident",
            "url": reverse("drill-detected", args=[run.pk]),
        },
    }
    lab_notice_set(schema, session.pk, notice)
    with transaction.atomic():
        drill_publish(run, "drill", message=notice["message"], action=notice["action"])


def drill_detect(*, learner: User, run_id: int) -> DrillRun:
    """The learner says they found the incident: the first time counts."""
    with transaction.atomic():
        run = (
            DrillRun.objects.select_for_update()
            .select_related("drill")
            .filter(pk=run_id, learner=learner)
            .first()
        )
        if run is None:
            raise NotFound("No such drill.", extra={"field": "drill"})
        if run.injected_at is None:
            raise Conflict("Nothing was injected into your lab.", extra={"field": "drill"})
        if run.drill.ended_at is not None and run.detected_at is None:
            raise Conflict("This drill is over.", extra={"field": "drill"})
        if run.detected_at is None:
            run.detected_at = timezone.now()
            run.save(update_fields=["detected_at"])
            drill_publish(run, "drill-detected")
            if run.lab_session_id is not None:
                lab_notice_clear(tenant_connection().schema_name, run.lab_session_id)
    return run


def drill_run_mitigated(*, run_id: int, at: datetime) -> bool:
    """The watcher saw the signature go: recorded once."""
    with transaction.atomic():
        updated = DrillRun.objects.filter(
            pk=run_id, mitigated_at__isnull=True, injected_at__isnull=False
        ).update(mitigated_at=at)
        if updated:
            run = DrillRun.objects.get(pk=run_id)
            drill_publish(run, "drill-mitigated")
    return bool(updated)


def drill_end(*, organisation: Organisation, actor: User, drill_id: int) -> Drill:
    """Ends a drill: its scenario leaves every lab it is still in, and shows no more."""
    drill = Drill.objects.filter(pk=drill_id).first()
    if drill is None:
        raise NotFound("No such drill.", extra={"field": "drill"})
    if drill.ended_at is not None:
        return drill
    schema = tenant_connection().schema_name
    for run in drill.runs.filter(injected_at__isnull=False).select_related("lab_session"):
        session = run.lab_session
        if session is None or session.state != LabSessionState.RUNNING:
            continue
        try:
            SandboxClient(session.handle.get("address", ""), timeout=3.0).scenario_disable(
                drill.scenario
            )
        except (OSError, SandboxError) as exc:
            log.info("drill scenario not removed", extra={"run": run.pk, "error": str(exc)})
        lab_session_unhide(schema, session.pk, drill.scenario)
        lab_notice_clear(schema, session.pk)
    with transaction.atomic():
        drill.ended_at = timezone.now()
        drill.save(update_fields=["ended_at"])
        audit_record(
            organisation=organisation,
            actor=actor,
            action="cohort.drill_end",
            target=drill.cohort.name,
            before={"scenario": drill.scenario},
        )
        for run in drill.runs.all():
            drill_publish(run, "drill-ended")
    return drill
