"""Incident drills against real labs: the scenario goes into every running lab of the
cohort, hidden from the learners' frames; a learner's "found it" is recorded once and only
for their own run; the watcher records the moment the signature went; ending the drill
takes the scenario out. Bad drills are refused naming what is wrong."""

import asyncio
import json

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import AuditEntry, Role
from apps.progress.drills import drill_detect, drill_end, drill_start
from apps.progress.models import DrillRun
from apps.progress.services import NotFound
from apps.progress.teaching import cohort_create, cohort_delete, cohort_members_add
from apps.progress.watch import frame_check, plans_forget
from apps.scenarios.relay import REVEALING, Relay
from apps.scenarios.services import lab_session_stop
from apps.tenants.errors import Conflict, ValidationFailed
from sandbox.backends.base import SandboxHandle
from sandbox.client import SandboxClient
from tests.conftest import make_member
from tests.platform.test_websocket_tenants import session_cookie_for
from tests.scenarios.test_relay import lab_socket, running_session
from tests.support.servers import asgi_server, celery_worker, wait_for

pytestmark = pytest.mark.xdist_group("lab-sessions")


def test_bad_drills_are_refused_naming_what_is_wrong(org_a):
    owner = make_member(org_a, Role.OWNER)
    learner = make_member(org_a, Role.LEARNER)
    with tenant_context(org_a):
        cohort = cohort_create(organisation=org_a, actor=owner, name="Drilled")
        with pytest.raises(ValidationFailed) as empty:
            drill_start(
                organisation=org_a, actor=owner, cohort_id=cohort.pk, scenario="fixed-latency"
            )
        assert empty.value.extra["field"] == "cohort"
        cohort_members_add(
            organisation=org_a, actor=owner, cohort_id=cohort.pk, emails=[learner.email]
        )
        with pytest.raises(ValidationFailed) as unknown:
            drill_start(organisation=org_a, actor=owner, cohort_id=cohort.pk, scenario="meteor")
        assert unknown.value.extra["field"] == "scenario"
        with pytest.raises(ValidationFailed) as bounds:
            drill_start(
                organisation=org_a,
                actor=owner,
                cohort_id=cohort.pk,
                scenario="fixed-latency",
                parameters={"delay_ms": 10**9},
            )
        assert bounds.value.extra["field"] == "parameters.delay_ms"
        drill = drill_start(
            organisation=org_a, actor=owner, cohort_id=cohort.pk, scenario="fixed-latency"
        )
        run = drill.runs.get()
        assert run.injected_at is None
        assert run.failure == "no lab running when the drill started"
        with pytest.raises(Conflict):
            drill_start(
                organisation=org_a, actor=owner, cohort_id=cohort.pk, scenario="fixed-latency"
            )
        with pytest.raises(Conflict):
            drill_detect(learner=learner, run_id=run.pk)  # nothing went into their lab
        cohort_delete(organisation=org_a, actor=owner, cohort_id=cohort.pk)
        assert AuditEntry.objects.filter(organisation=org_a, action="cohort.drill_end").exists()


@pytest.mark.worker
def test_a_drill_hides_in_the_lab_is_found_and_its_signature_goes(
    committed_organisations, sandbox_root
):
    organisation = committed_organisations("Drill day")
    owner = make_member(organisation, Role.OWNER)
    learner = make_member(organisation, Role.LEARNER)
    absent = make_member(organisation, Role.LEARNER)
    schema = organisation.schema_name
    plans_forget()
    with tenant_context(organisation):
        cohort = cohort_create(organisation=organisation, actor=owner, name="On call")
        cohort_members_add(
            organisation=organisation,
            actor=owner,
            cohort_id=cohort.pk,
            emails=[learner.email, absent.email],
        )
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        session = running_session(organisation, learner, sandbox_root)
        relay = Relay(name="relay-drill")

        async def frames(ticks: range) -> list[dict]:
            seen = []
            for tick in ticks:
                claimed = [(k, a) for k, a in relay.running().items() if relay.claim(k, tick)]
                for key, address in claimed:
                    frame = await asyncio.to_thread(relay.read, key, address)
                    if frame is not None and frame["session"] == session.pk:
                        seen.append(frame)
                        await asyncio.to_thread(frame_check, schema, session.pk, frame)
                await asyncio.sleep(1.0)
            return seen

        asyncio.run(frames(range(40_000_001, 40_000_004)))  # a baseline before the drill
        with tenant_context(organisation):
            drill = drill_start(
                organisation=organisation,
                actor=owner,
                cohort_id=cohort.pk,
                scenario="fixed-latency",
                parameters={"delay_ms": 400},
            )

        def injected() -> dict | None:  # a worker's task puts it into each running lab
            with tenant_context(organisation):
                found = {r.learner_id: r for r in DrillRun.objects.filter(drill=drill)}
            return found if found[learner.pk].injected_at is not None else None

        found = wait_for(injected, "the drill to go into the lab", seconds=30)
        assert found is not None
        runs: dict = found
        assert runs[learner.pk].injected_at is not None
        assert runs[absent.pk].injected_at is None
        sandbox = SandboxClient(SandboxHandle.from_dict(session.handle).address)
        assert "fixed-latency" in sandbox.state()["scenarios"]  # it is in the lab...

        during = asyncio.run(frames(range(40_000_011, 40_000_023)))
        assert during
        for frame in during:  # ...and nowhere in what the learner is shown
            assert "fixed-latency" not in frame["scenarios"]
            assert "fixed-latency" not in frame["scenario_metrics"]
            assert all(e.get("scenario") != "fixed-latency" for e in frame["events"])
            assert all(e.get("what") != "load changed" for e in frame["events"])
            assert all(line.get("message") not in REVEALING for line in frame["logs"])
            assert all("changed" not in line for line in frame["logs"])

        # Probing the lab socket neither finds the scenario nor removes it; a reloaded
        # page is told of the drill again.
        with (
            asgi_server() as port,
            lab_socket(
                port, organisation, session.pk, session_cookie_for(learner, organisation)
            ) as ws,
        ):
            notice = next(
                message
                for message in (json.loads(ws.recv(timeout=10)) for _ in range(5))
                if message["type"] == "progress"
            )
            assert notice["kind"] == "drill"
            assert "fixed-latency" not in json.dumps(notice)
            for slug in ("fixed-latency", "cpu-spike"):
                ws.send(json.dumps({"type": "scenario", "slug": slug, "enabled": False}))
                ack = next(
                    message
                    for message in (json.loads(ws.recv(timeout=10)) for _ in range(5))
                    if message["type"] == "ack"
                )
                assert set(ack) == {"type", "request"}
        assert "fixed-latency" in sandbox.state()["scenarios"]
        assert max(f["figures"].get("inventory.p50_ms", 0) for f in during) > 150

        with tenant_context(organisation):
            with pytest.raises(NotFound):
                drill_detect(learner=absent, run_id=runs[learner.pk].pk)
            first = drill_detect(learner=learner, run_id=runs[learner.pk].pk).detected_at
            assert drill_detect(learner=learner, run_id=runs[learner.pk].pk).detected_at == first

        sandbox.scenario_disable("fixed-latency")  # the learner's fix
        for start in range(40_000_031, 40_000_091, 10):  # bounded: a minute at most
            asyncio.run(frames(range(start, start + 10)))
            with tenant_context(organisation):
                mitigated = DrillRun.objects.get(pk=runs[learner.pk].pk)
            if mitigated.mitigated_at is not None:
                break
        assert mitigated.seconds_to_detect is not None
        assert mitigated.seconds_to_mitigate is not None
        assert mitigated.seconds_to_mitigate > 0

        sandbox.scenario_enable("fixed-latency", {"delay_ms": 100})
        with tenant_context(organisation):
            drill_end(organisation=organisation, actor=owner, drill_id=drill.pk)
        assert "fixed-latency" not in sandbox.state()["scenarios"]
        after = asyncio.run(frames(range(40_000_101, 40_000_103)))
        assert after
        with tenant_context(organisation):
            lab_session_stop(session_id=session.pk)
