"""Checks evaluated from a real sandbox's frames as the relay sends them: a tutorial's
lab started by a real Celery worker; the relay's ticks pass the step's metric check with
no one pressing anything, and the learner's lab socket hears it."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.progress.models import CheckResult, Enrolment
from apps.progress.services import enrolment_create, tutorial_lab_start
from apps.progress.watch import plans_forget
from apps.scenarios.events import lab_session_group
from apps.scenarios.models import LabSession
from apps.scenarios.relay import Relay
from apps.scenarios.services import lab_session_stop
from tests.conftest import make_member
from tests.support.servers import celery_worker, wait_for

pytestmark = pytest.mark.xdist_group("lab-sessions")


@pytest.mark.worker
def test_the_relay_passes_a_check_when_it_holds(
    committed_organisations, own_tutorial, sandbox_root
):
    organisation = committed_organisations("Live checks")
    slug = own_tutorial(organisation)
    learner = make_member(organisation, Role.LEARNER)
    plans_forget()
    with tenant_context(organisation):
        enrolment = enrolment_create(learner=learner, slug=slug)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        with tenant_context(organisation):
            session = tutorial_lab_start(organisation=organisation, enrolment=enrolment)
            assert tutorial_lab_start(organisation=organisation, enrolment=enrolment) == session

        def running():
            with tenant_context(organisation):
                found = LabSession.objects.get(pk=session.pk)
            return found if found.state == "running" else None

        wait_for(running, "the tutorial's lab to run", seconds=60)

        async def ticks():
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add(lab_session_group(organisation.schema_name, session.pk), channel)
            relay = Relay(name="relay-checks")
            for tick in range(30_000_001, 30_000_041):  # bounded: 40 ticks at most
                await relay.tick(tick)
                recorded = await asyncio.to_thread(recorded_checks)
                if "healthy" in recorded:
                    break
                await asyncio.sleep(1.0)
            messages = []
            while True:
                try:
                    messages.append(await asyncio.wait_for(layer.receive(channel), 2))
                except TimeoutError:
                    return messages

        def recorded_checks() -> set[str]:
            with tenant_context(organisation):
                return set(
                    CheckResult.objects.filter(enrolment=enrolment).values_list(
                        "check_id", flat=True
                    )
                )

        messages = asyncio.run(ticks())
        assert recorded_checks() == {"healthy"}  # the quiz is the learner's to answer
        progress = [m["progress"] for m in messages if m["type"] == "lab.progress"]
        assert {"kind": "check", "step": "observe", "check": "healthy"}.items() <= progress[
            -1
        ].items()
        with tenant_context(organisation):
            assert Enrolment.objects.get(pk=enrolment.pk).score == 1
            lab_session_stop(session_id=session.pk)
