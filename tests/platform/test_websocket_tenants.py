"""Over the real ASGI server, WebSockets resolve the organisation from the host and let
only its members in (close codes: 4401 anonymous, 4403 role missing, 4404 not a member)."""

import contextlib
import json
import socket

from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from apps.accounts.models import Role
from tests.conftest import host_of, make_member


def session_cookie_for(user, organisation) -> str:
    client = Client(HTTP_HOST=host_of(organisation))
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def open_events(server, host: str, cookie: str | None = None):
    """Connects to ws://<host>/ws/events/ through loopback; returns (first frame, close code)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    headers = {"Cookie": cookie} if cookie else {}
    with ws_connect(
        f"ws://{host}:{server.port}/ws/events/",
        sock=sock,
        origin=Origin(f"http://{host}:{server.port}"),
        additional_headers=headers,
        open_timeout=10,
    ) as ws:
        try:
            frame = json.loads(ws.recv(timeout=10))
        except ConnectionClosed:
            return None, ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None
        ws.send(json.dumps({"type": "ping"}))
        pong = json.loads(ws.recv(timeout=10))
        assert pong == {"type": "pong"}
        ws.send("not json at all")
        assert json.loads(ws.recv(timeout=10)) == {
            "type": "error",
            "message": "Messages must be JSON objects.",
        }
        ws.send(json.dumps({"type": "launch-missiles"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        return frame, None


def test_member_connects_and_the_host_resolves_their_organisation(
    committed_organisations, live_server_asgi
):
    org_a = committed_organisations("Org A")
    committed_organisations("Org B")
    learner = make_member(org_a, Role.LEARNER)

    frame, code = open_events(live_server_asgi, host_of(org_a), session_cookie_for(learner, org_a))

    assert code is None
    assert frame == {
        "type": "hello",
        "organisation": org_a.slug,
        "user": learner.email,
        "role": "learner",
    }


def test_anonymous_user_is_rejected(committed_organisations, live_server_asgi):
    org_a = committed_organisations("Org A")
    frame, code = open_events(live_server_asgi, host_of(org_a))
    assert frame is None
    assert code == 4401


def test_member_of_another_organisation_is_rejected_as_not_found(
    committed_organisations, live_server_asgi
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    outsider = make_member(org_b, Role.OWNER)
    frame, code = open_events(live_server_asgi, host_of(org_a), session_cookie_for(outsider, org_b))
    assert frame is None
    assert code == 4404


def test_unknown_organisation_host_is_rejected(live_server_asgi):
    frame, code = open_events(live_server_asgi, f"nobody-here.{settings.BASE_DOMAIN}")
    assert frame is None
    assert code == 4404


def test_an_idle_socket_stays_open_past_the_redis_client_timeout(
    committed_organisations, live_server_asgi
):
    """redis-py 8 times out after 5 s, as long as channels_redis blocks for a message:
    without a longer socket timeout every idle viewer was cut off after 5 s."""
    org_a = committed_organisations("Org A")
    learner = make_member(org_a, Role.LEARNER)
    host = host_of(org_a)
    sock = socket.create_connection(("127.0.0.1", live_server_asgi.port), timeout=20)
    with ws_connect(
        f"ws://{host}:{live_server_asgi.port}/ws/events/",
        sock=sock,
        origin=Origin(f"http://{host}:{live_server_asgi.port}"),
        additional_headers={"Cookie": session_cookie_for(learner, org_a)},
        open_timeout=10,
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        with contextlib.suppress(TimeoutError):
            ws.recv(timeout=8)  # idle for longer than 5 s: nothing arrives, nothing breaks
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
