"""The instructors' live feed (ws/progress/) over the real ASGI server: an instructor hears
their organisation's progress as it is committed, and only theirs; a learner of the
organisation is refused as a member without the role (4403), a member of another
organisation as a stranger (4404), and nobody logged in as anonymous (4401)."""

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django_tenants.utils import tenant_context
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from apps.accounts.models import Role
from apps.progress.services import check_result_record, enrolment_create
from tests.conftest import LiveServer, host_of, make_member
from tests.platform.test_websocket_tenants import session_cookie_for


@contextmanager
def progress_feed(server: LiveServer, host: str, cookie: str | None) -> Iterator[ClientConnection]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with ws_connect(
        f"ws://{host}:{server.port}/ws/progress/",
        sock=sock,
        origin=Origin(f"http://{host}:{server.port}"),
        additional_headers={"Cookie": cookie} if cookie else {},
        open_timeout=10,
    ) as ws:
        yield ws


def refused_with(server: LiveServer, host: str, cookie: str | None) -> int | None:
    """The close code the feed answers with, having sent nothing before it."""
    with progress_feed(server, host, cookie) as ws:
        try:
            frame = ws.recv(timeout=10)
        except ConnectionClosed:
            return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None
        raise AssertionError(f"the feed let them in and sent {frame!r}")


def test_an_instructor_hears_their_organisations_progress_and_no_other(
    committed_organisations, live_server_asgi, own_tutorial
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    slug_a, slug_b = own_tutorial(org_a), own_tutorial(org_b)
    teacher_a = make_member(org_a, Role.INSTRUCTOR)
    teacher_b = make_member(org_b, Role.INSTRUCTOR)
    learner_a, learner_b = make_member(org_a, Role.LEARNER), make_member(org_b, Role.LEARNER)
    with (
        progress_feed(
            live_server_asgi, host_of(org_a), session_cookie_for(teacher_a, org_a)
        ) as feed_a,
        progress_feed(
            live_server_asgi, host_of(org_b), session_cookie_for(teacher_b, org_b)
        ) as feed_b,
    ):
        assert json.loads(feed_a.recv(timeout=10)) == {"type": "hello", "organisation": org_a.slug}
        assert json.loads(feed_b.recv(timeout=10)) == {"type": "hello", "organisation": org_b.slug}
        with tenant_context(org_a):
            mine = enrolment_create(learner=learner_a, slug=slug_a)
            check_result_record(enrolment_id=mine.pk, step_slug="observe", check_id="healthy")
        with tenant_context(org_b):
            theirs = enrolment_create(learner=learner_b, slug=slug_b)
            check_result_record(enrolment_id=theirs.pk, step_slug="observe", check_id="healthy")

        heard_a = json.loads(feed_a.recv(timeout=10))
        assert heard_a == {
            "type": "progress",
            "kind": "check",
            "enrolment": mine.pk,
            "learner": learner_a.pk,
            "tutorial": slug_a,
            "step": "observe",
            "check": "healthy",
            "step_passed": False,
            "completed": False,
            "message": "The shop is healthy.",
        }
        # Org A's event went out first: had B's feed heard it, it would come first here.
        heard_b = json.loads(feed_b.recv(timeout=10))
        assert (heard_b["learner"], heard_b["enrolment"]) == (learner_b.pk, theirs.pk)

        feed_a.send(json.dumps({"type": "ping"}))  # read-only: nothing is taken from instructors
        assert json.loads(feed_a.recv(timeout=10)) == {
            "type": "error",
            "message": "This feed is read-only.",
        }


def test_learners_strangers_and_anonymous_visitors_are_refused(
    committed_organisations, live_server_asgi
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    host = host_of(org_a)
    learner = make_member(org_a, Role.LEARNER)
    assert refused_with(live_server_asgi, host, session_cookie_for(learner, org_a)) == 4403

    # An instructor, even an owner, of another organisation is no member here.
    for role in (Role.INSTRUCTOR, Role.OWNER):
        stranger = make_member(org_b, role)
        cookie = session_cookie_for(stranger, org_b)
        assert refused_with(live_server_asgi, host, cookie) == 4404
        # ...while their own organisation's feed takes them.
        with progress_feed(live_server_asgi, host_of(org_b), cookie) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"

    assert refused_with(live_server_asgi, host, None) == 4401
