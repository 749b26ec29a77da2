"""Lab sessions with real Celery workers, real Redis and real sandboxes: provisioning,
stopping, the quota under concurrency, expiry, and the reaper after a worker dies."""

import os
import signal
import sys
import threading
from datetime import timedelta
from typing import Any

import psutil
import pytest
from django.db import connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.scenarios.models import LabSession, LabSessionState
from apps.scenarios.reaper import sandboxes_reap, sessions_sweep_all
from apps.scenarios.services import (
    QuotaExceeded,
    lab_session_extend,
    lab_session_start,
    lab_session_stop,
    lab_sessions_sweep,
)
from apps.tenants.errors import Conflict, ValidationFailed
from apps.tenants.models import Plan
from sandbox.backends.base import SandboxHandle, SandboxSpec
from sandbox.backends.local import LocalBackend
from sandbox.client import SandboxClient
from tests.conftest import make_member, unique
from tests.support.servers import celery_worker, wait_for

pytestmark = pytest.mark.xdist_group("lab-sessions")


def session_in(organisation, pk: int) -> LabSession:
    with tenant_context(organisation):
        return LabSession.objects.get(pk=pk)


def state_of(organisation, pk: int) -> str:
    return session_in(organisation, pk).state


def with_quota(organisation, quota: int):
    organisation.plan = Plan.objects.create(
        slug=unique("plan"), name="Lab plan", seats=500, sandbox_quota=quota
    )
    organisation.save(update_fields=["plan"])
    return organisation


# ------------------------------------------------------------------ rules, without workers
def test_bad_scenarios_and_ttl_name_the_field(org_a, member_factory):
    learner = member_factory(org_a)
    with tenant_context(org_a):
        cases: list[tuple[dict[str, Any], str]] = [
            ({"scenarios": ["no-such-scenario"]}, "scenarios[0]"),
            ({"scenarios": [["fixed-latency", {"delay_ms": -5}]]}, "scenarios[0].delay_ms"),
            ({"scenarios": "fixed-latency"}, "scenarios"),
            ({"ttl_seconds": 10}, "ttl_seconds"),
            ({"scenario_set": ""}, "scenario_set"),
        ]
        for kwargs, field in cases:
            arguments = {"scenario_set": "intro", **kwargs}
            with pytest.raises(ValidationFailed) as refused:
                lab_session_start(organisation=org_a, learner=learner, **arguments)
            assert refused.value.extra["field"] == field, kwargs
        assert not LabSession.objects.exists()


def test_one_lab_per_learner(org_a, member_factory):
    learner = member_factory(org_a)
    with tenant_context(org_a):
        first = lab_session_start(organisation=org_a, learner=learner, scenario_set="intro")
        with pytest.raises(Conflict, match="already have a lab running"):
            lab_session_start(organisation=org_a, learner=learner, scenario_set="intro")
        lab_session_stop(session_id=first.pk)  # never provisioned: stopped at once
        assert LabSession.objects.get(pk=first.pk).state == LabSessionState.STOPPED
        assert lab_session_start(organisation=org_a, learner=learner, scenario_set="intro")


def test_fifty_simultaneous_starts_against_a_quota_of_ten(committed_organisations):
    organisation = with_quota(committed_organisations("Busy"), 10)
    learners = [make_member(organisation) for _ in range(50)]
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def start(learner) -> None:
        try:
            barrier.wait()
            with tenant_context(organisation):
                lab_session_start(organisation=organisation, learner=learner, scenario_set="x")
            outcome = "started"
        except QuotaExceeded as exc:
            outcome = "refused" if "All 10 lab sandboxes" in exc.message else exc.message
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=start, args=(learner,)) for learner in learners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["refused"] * 40 + ["started"] * 10
    with tenant_context(organisation):
        assert LabSession.objects.filter(state=LabSessionState.REQUESTED).count() == 10
        for session in LabSession.objects.all():
            lab_session_stop(session_id=session.pk)


# ------------------------------------------------------------------ with workers and sandboxes
@pytest.mark.worker
def test_start_run_extend_and_stop_a_real_sandbox(committed_organisations, sandbox_root):
    organisation = committed_organisations("Labs")
    learner = make_member(organisation)
    with tenant_context(organisation):
        session = lab_session_start(
            organisation=organisation,
            learner=learner,
            scenario_set="latency",
            scenarios=[["fixed-latency", {"delay_ms": 120}]],
        )
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        wait_for(lambda: state_of(organisation, session.pk) == "running", "the lab to run")
        running = session_in(organisation, session.pk)
        handle = SandboxHandle.from_dict(running.handle)
        client = SandboxClient(handle.address)
        assert client.health()["ready"]
        assert client.state()["scenarios"]["fixed-latency"]["delay_ms"] == 120
        with tenant_context(organisation):
            before = running.expires_at
            assert before is not None
            extended = lab_session_extend(session_id=session.pk, learner=learner, seconds=600)
            assert extended.expires_at is not None
            assert extended.expires_at - before >= timedelta(seconds=599)
            lab_session_stop(session_id=session.pk, learner=learner)
        wait_for(lambda: state_of(organisation, session.pk) == "stopped", "the lab to stop")
    assert not (sandbox_root / handle.sandbox_id).exists()
    assert LocalBackend(root=sandbox_root).list() == []


@pytest.mark.worker
def test_an_expired_sessions_sandbox_is_gone(committed_organisations, sandbox_root):
    organisation = committed_organisations("Expiring")
    learner = make_member(organisation)
    with tenant_context(organisation):
        session = lab_session_start(organisation=organisation, learner=learner, scenario_set="x")
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        wait_for(lambda: state_of(organisation, session.pk) == "running", "the lab to run")
        handle = SandboxHandle.from_dict(session_in(organisation, session.pk).handle)
        with tenant_context(organisation):
            LabSession.objects.filter(pk=session.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
            assert lab_sessions_sweep(organisation=organisation)["expired"] == 1
        wait_for(lambda: state_of(organisation, session.pk) == "expired", "the lab to expire")
    assert not (sandbox_root / handle.sandbox_id).exists()


@pytest.mark.worker
def test_a_worker_killed_mid_provision_leaves_no_orphan(
    committed_organisations, sandbox_root, settings
):
    organisation = committed_organisations("Crashing")
    learner = make_member(organisation)
    backend = LocalBackend(root=sandbox_root)
    # An interpreter slow to start (as on a loaded machine) widens the provisioning window.
    slow = sandbox_root / "slow-python"
    slow.write_text(f'#!/bin/sh\nsleep 4\nexec {sys.executable} "$@"\n')
    slow.chmod(0o755)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root), SANDBOX_PYTHON=str(slow)) as node:
        with tenant_context(organisation):
            session = lab_session_start(
                organisation=organisation, learner=learner, scenario_set="x"
            )
        wait_for(lambda: state_of(organisation, session.pk) == "starting", "provisioning")
        # (a solo worker answers pings between tasks: it is up before the lab is asked for)
        # Kill the worker while it boots the sandbox: the row says starting, for ever.
        os.kill(node.pid, signal.SIGKILL)
        wait_for(lambda: _gone(node.pid), "the worker to die")
    # The interpreter it was starting notices its parent is gone and ends by itself.
    wait_for(lambda: not _running(str(slow)), "the orphaned start to end", seconds=30)
    settings.LAB_PROVISION_TIMEOUT_S = 0
    assert sessions_sweep_all()["stuck"] >= 1
    stuck = session_in(organisation, session.pk)
    assert stuck.state == LabSessionState.FAILED
    assert "took too long to start" in stuck.failure_reason
    sandboxes_reap()
    assert [h for h in backend.list() if h.session_id.endswith(f"-s{session.pk}")] == []


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _running(command_part: str) -> bool:
    for process in psutil.process_iter(["cmdline"]):
        if any(command_part in part for part in process.info["cmdline"] or []):
            return True
    return False


def test_reaper_stops_the_sandbox_of_a_session_whose_worker_died_after_booting_it(
    committed_organisations, sandbox_root, settings
):
    """The worst moment to die: the sandbox runs, the row was never told (no handle)."""
    organisation = committed_organisations("Orphans")
    learner = make_member(organisation)
    with tenant_context(organisation):
        session = lab_session_start(organisation=organisation, learner=learner, scenario_set="x")
        LabSession.objects.filter(pk=session.pk).update(
            state=LabSessionState.STARTING, started_at=timezone.now()
        )
    backend = LocalBackend(root=sandbox_root)
    try:
        orphan = backend.start(SandboxSpec(session_id=session.sandbox_session_id(organisation.pk)))
        unrelated = backend.start(SandboxSpec(session_id="someone-else"))
        assert sandboxes_reap() == []  # still starting: its sandbox is wanted
        settings.LAB_PROVISION_TIMEOUT_S = 0
        sessions_sweep_all()
        assert state_of(organisation, session.pk) == LabSessionState.FAILED
        assert sandboxes_reap() == [orphan.sandbox_id]
        assert [h.sandbox_id for h in backend.list()] == [unrelated.sandbox_id]
        assert not (sandbox_root / orphan.sandbox_id).exists()
    finally:
        for handle in backend.list():
            backend.stop(handle)
        backend.close()


@pytest.mark.worker
def test_a_start_claims_a_warm_sandbox_and_the_reaper_knows_pool_sandboxes(
    committed_organisations, sandbox_root, settings
):
    from apps.scenarios.pool import pool_fill, pool_members

    settings.LAB_WARM_POOL = "warm-set=1"
    assert pool_fill() == {"warm-set": 1}
    (warm,) = pool_members()
    organisation = committed_organisations("Warm")
    learner = make_member(organisation)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root), LAB_WARM_POOL="warm-set=1"):
        with tenant_context(organisation):
            session = lab_session_start(
                organisation=organisation,
                learner=learner,
                scenario_set="warm-set",
                scenarios=[["fixed-latency", {"delay_ms": 50}]],
            )
        wait_for(lambda: state_of(organisation, session.pk) == "running", "the lab to run")
        handle = SandboxHandle.from_dict(session_in(organisation, session.pk).handle)
        assert handle.sandbox_id == warm  # claimed, not booted
        assert pool_members() == set()
        assert SandboxClient(handle.address).state()["scenarios"] == {
            "fixed-latency": {"delay_ms": 50}
        }
        settings.LAB_PROVISION_TIMEOUT_S = 0
        assert warm not in sandboxes_reap()  # held by a running lab
        # a warm sandbox taken from its pool by a worker that then died: an orphan
        assert pool_fill() == {"warm-set": 1}
        (lost,) = pool_members()
        from apps.scenarios.pool import pool_claim

        claimed = pool_claim("warm-set")
        assert claimed is not None
        assert claimed.sandbox_id == lost
        assert sandboxes_reap() == [lost]
        with tenant_context(organisation):
            lab_session_stop(session_id=session.pk)
        wait_for(lambda: state_of(organisation, session.pk) == "stopped", "the lab to stop")
    assert LocalBackend(root=sandbox_root).list() == []
