"""The relay and the lab WebSocket over real servers: one read per sandbox per tick
whatever the number of relays, frames reach the session's viewers, the learner's
switches reach the sandbox, instructors watch read-only, others are refused."""

import asyncio
import json
import socket

import pytest
from channels.layers import get_channel_layer
from django_tenants.utils import tenant_context
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from apps.accounts.models import Role
from apps.scenarios.events import lab_session_group
from apps.scenarios.models import LabSession
from apps.scenarios.relay import Relay
from apps.scenarios.services import lab_session_start, lab_session_stop
from sandbox.backends.base import SandboxHandle
from sandbox.client import SandboxClient
from tests.conftest import host_of, make_member
from tests.platform.test_websocket_tenants import session_cookie_for
from tests.support.servers import asgi_server, celery_worker, wait_for

pytestmark = pytest.mark.xdist_group("lab-sessions")


def running_session(organisation, learner, sandbox_root):
    with tenant_context(organisation):
        session = lab_session_start(organisation=organisation, learner=learner, scenario_set="x")

    def running():
        with tenant_context(organisation):
            found = LabSession.objects.get(pk=session.pk)
        return found if found.state == "running" else None

    return wait_for(running, "the lab to run", seconds=60)


@pytest.mark.worker
def test_one_read_per_sandbox_per_tick_and_frames_reach_the_group(
    committed_organisations, sandbox_root
):
    organisation = committed_organisations("Relayed")
    learner = make_member(organisation)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        session = running_session(organisation, learner, sandbox_root)

        async def scenario():
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add(lab_session_group(organisation.schema_name, session.pk), channel)
            first, second = Relay(name="relay-a"), Relay(name="relay-b")
            sent = []
            for tick in range(20_000_001, 20_000_005):
                sent.append(await first.tick(tick) + await second.tick(tick))
                await asyncio.sleep(1.0)  # a watched sandbox samples once a second
            # The group also carries the session's own events (its "running" state may be
            # sent after the test saw it in the database): frames only.
            frames = []
            for _ in range(sum(sent) + 10):
                message = await asyncio.wait_for(layer.receive(channel), timeout=10)
                if message["type"] == "lab.frame":
                    frames.append(message["frame"])
                if len(frames) == sum(sent):
                    break
            return first.reads + second.reads, sent, frames

        reads, sent, frames = asyncio.run(scenario())
        assert reads == 4  # four ticks, two relays: one read each tick
        assert sent == [1, 1, 1, 1]
        assert {frame["session"] for frame in frames} == {session.pk}
        assert "inventory.p99_ms" in frames[-1]["figures"]
        with tenant_context(organisation):
            lab_session_stop(session_id=session.pk)


def lab_socket(port: int, organisation, session_id: int, cookie: str | None):
    host = host_of(organisation)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ws_connect(
        f"ws://{host}:{port}/ws/labs/{session_id}/",
        sock=sock,
        origin=Origin(f"http://{host}:{port}"),
        additional_headers={"Cookie": cookie} if cookie else {},
        open_timeout=10,
    )


def close_code(port, organisation, session_id, cookie) -> int | None:
    with lab_socket(port, organisation, session_id, cookie) as ws:
        try:
            ws.recv(timeout=10)
        except ConnectionClosed:
            return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None
    return None


@pytest.mark.worker
def test_learner_drives_instructor_watches_others_are_refused(
    committed_organisations, sandbox_root
):
    organisation, other = committed_organisations("Owned"), committed_organisations("Other")
    learner = make_member(organisation, Role.LEARNER)
    instructor = make_member(organisation, Role.INSTRUCTOR)
    classmate = make_member(organisation, Role.LEARNER)
    stranger = make_member(other, Role.OWNER)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)), asgi_server() as port:
        session = running_session(organisation, learner, sandbox_root)
        handle = SandboxHandle.from_dict(session.handle)
        assert close_code(port, organisation, session.pk, None) == 4401
        assert (
            close_code(port, organisation, session.pk, session_cookie_for(stranger, other)) == 4404
        )
        assert (
            close_code(port, organisation, session.pk, session_cookie_for(classmate, organisation))
            == 4403
        )
        assert (
            close_code(port, organisation, 999_999, session_cookie_for(learner, organisation))
            == 4404
        )

        with lab_socket(
            port, organisation, session.pk, session_cookie_for(learner, organisation)
        ) as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello["type"] == "hello"
            assert hello["read_only"] is False
            ws.send(
                json.dumps(
                    {
                        "type": "scenario",
                        "slug": "fixed-latency",
                        "enabled": True,
                        "parameters": {"delay_ms": 999_999},
                    }
                )
            )
            refused = json.loads(ws.recv(timeout=10))
            assert refused["type"] == "error"
            assert "delay_ms" in refused["message"]
            ws.send(json.dumps({"type": "launch", "slug": "x"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "error"
            ws.send(
                json.dumps(
                    {
                        "type": "scenario",
                        "slug": "fixed-latency",
                        "enabled": True,
                        "parameters": {"delay_ms": 150},
                    }
                )
            )
            ack = json.loads(ws.recv(timeout=10))
            assert ack["type"] == "ack"
            for bad, named in (
                ({"type": "load", "rate_rps": 500}, "“rate_rps” must be from 0 to 50"),
                ({"type": "load", "hot_key_ratio": "lots"}, "“hot_key_ratio” must be a number"),
                ({"type": "load", "threads": 4}, "not threads"),
                ({"type": "load"}, "not nothing"),
            ):
                ws.send(json.dumps(bad))
                refused = json.loads(ws.recv(timeout=10))
                assert refused["type"] == "error"
                assert named in refused["message"]
            ws.send(json.dumps({"type": "load", "rate_rps": 12, "read_ratio": 0.5}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        state = SandboxClient(handle.address).state()
        assert state["scenarios"] == {"fixed-latency": {"delay_ms": 150}}
        assert state["load"]["rate_rps"] == 12

        with lab_socket(
            port, organisation, session.pk, session_cookie_for(instructor, organisation)
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["read_only"] is True
            ws.send(json.dumps({"type": "mitigation", "slug": "circuit-breaker", "enabled": True}))
            answer = json.loads(ws.recv(timeout=10))
            assert answer["type"] == "error"
            assert "read-only" in answer["message"]
        assert SandboxClient(handle.address).state()["mitigations"] == {}
        with tenant_context(organisation):
            lab_session_stop(session_id=session.pk)


@pytest.mark.worker
def test_a_new_sandbox_is_read_at_once_by_exactly_one_relay(committed_organisations, sandbox_root):
    organisation = committed_organisations("Fresh")
    learner = make_member(organisation)
    with celery_worker(SANDBOX_ROOT=str(sandbox_root)):
        session = running_session(organisation, learner, sandbox_root)

        async def scenario():
            first, second = Relay(name="relay-a"), Relay(name="relay-b")
            sent = 0
            for _ in range(50):  # bounded: a sandbox that does not answer yet is asked again
                sent = await first.first_reads()
                if sent:
                    break
                await asyncio.sleep(0.2)
            return [sent, await second.first_reads(), await first.first_reads()]

        assert asyncio.run(scenario()) == [1, 0, 0]
        with tenant_context(organisation):
            lab_session_stop(session_id=session.pk)
