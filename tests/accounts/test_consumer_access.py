"""Consumers are scoped like views: the base class refuses a member without the role
(4403) and a non-member (4404); a cross-site page cannot open a socket at all."""

import asyncio

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.conf import settings
from django.test import Client
from django.urls import path

from apps.accounts.consumers import OrganisationConsumer
from apps.accounts.models import Role
from apps.tenants.asgi import OrganisationFromHostMiddleware, SameOriginOnly
from tests.conftest import host_of, make_member
from tests.support.asgi import websocket_open


class InstructorsOnly(OrganisationConsumer):
    role = Role.INSTRUCTOR

    async def connected(self):
        await self.accept()
        await self.send_json({"type": "hello", "role": self.membership.role})


application = SameOriginOnly(
    OrganisationFromHostMiddleware(
        AuthMiddlewareStack(URLRouter([path("ws/instructors/", InstructorsOnly.as_asgi())]))
    )
)


def headers_for(host: str, user=None, organisation=None, origin: str | None = "same"):
    headers = [(b"host", host.encode())]
    if origin == "same":
        headers.append((b"origin", f"http://{host}".encode()))
    elif origin:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        client = Client(HTTP_HOST=host_of(organisation))
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


def open_socket(headers):
    return asyncio.run(websocket_open(application, "/ws/instructors/", headers))


def test_instructor_gets_in_and_learner_is_refused_with_4403(committed_organisations):
    org = committed_organisations("Org A")
    instructor, learner = make_member(org, Role.INSTRUCTOR), make_member(org, Role.LEARNER)

    accepted, code, frames = open_socket(headers_for(host_of(org), instructor, org))
    assert accepted
    assert code is None
    assert frames[0]["text"] == '{"type": "hello", "role": "instructor"}'

    accepted, code, _ = open_socket(headers_for(host_of(org), learner, org))
    assert code == 4403


def test_socket_from_another_organisations_page_is_refused_at_the_handshake(
    committed_organisations,
):
    org_a, org_b = committed_organisations("Org A"), committed_organisations("Org B")
    member_of_both = make_member(org_a, Role.OWNER)
    from apps.accounts.services import membership_set

    membership_set(user=member_of_both, organisation=org_b, role=Role.OWNER)
    evil = headers_for(host_of(org_a), member_of_both, org_a, origin=f"http://{host_of(org_b)}")
    accepted, code, _ = open_socket(evil)
    assert not accepted
    assert code == 4403

    no_origin = headers_for(host_of(org_a), member_of_both, org_a, origin=None)
    accepted, code, _ = open_socket(no_origin)
    assert not accepted
    assert code == 4403
