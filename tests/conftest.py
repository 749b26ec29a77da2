"""Test harness: real PostgreSQL (one test database per xdist worker, tenant template
migrated once per session) and real Redis. Data is made through the real services."""

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from apps.accounts.models import Role, User
from apps.accounts.services import membership_set, user_create
from apps.tenants.models import Organisation
from apps.tenants.schemas import tenant_connection
from apps.tenants.services import organisation_create, organisation_delete
from tests.support.servers import asgi_server

PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    return f"{prefix}-{worker}-{os.getpid() % 10000}-{next(_counter)}"


def make_organisation(name: str | None = None) -> Organisation:
    slug = unique("org")
    return organisation_create(name=name or slug.replace("-", " ").title(), slug=slug)


def make_member(organisation: Organisation, role: str = Role.LEARNER) -> User:
    user = user_create(email=f"{unique(role)}@example.test", password=PASSWORD, email_verified=True)
    membership_set(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture
def organisation_factory(db: None) -> Callable[..., Organisation]:
    """Fresh organisations inside the test's transaction: rolled back, schema and all."""
    return make_organisation


@pytest.fixture
def org_a(organisation_factory: Callable[..., Organisation]) -> Organisation:
    return organisation_factory("Org A")


@pytest.fixture
def org_b(organisation_factory: Callable[..., Organisation]) -> Organisation:
    return organisation_factory("Org B")


@pytest.fixture
def member_factory(db: None) -> Callable[..., User]:
    return make_member


@pytest.fixture
def committed_organisations(transactional_db: None) -> Iterator[Callable[..., Organisation]]:
    """Organisations committed for real, for other processes (workers, servers) to see."""
    made: list[Organisation] = []

    def factory(name: str | None = None) -> Organisation:
        organisation = make_organisation(name)
        made.append(organisation)
        return organisation

    yield factory
    tenant_connection().set_schema_to_public()
    for organisation in made:
        organisation_delete(organisation=organisation)


def host_of(organisation: Organisation | None) -> str:
    if organisation is None:
        return settings.BASE_DOMAIN
    return f"{organisation.slug}.{settings.BASE_DOMAIN}"


@pytest.fixture
def site_client() -> Callable[..., Client]:
    """A test client bound to an organisation's host (or the public site), logged in or not."""

    def make(organisation: Organisation | None = None, user: User | None = None) -> Client:
        client = Client(HTTP_HOST=host_of(organisation))
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def login_as(site_client: Callable[..., Client]) -> Callable[[Organisation, str], Client]:
    """A client on the organisation's site, logged in as a new member with `role`."""

    def make(organisation: Organisation, role: str) -> Client:
        return site_client(organisation, make_member(organisation, role))

    return make


@pytest.fixture(autouse=True)
def _public_schema_first() -> Iterator[None]:
    """Each test starts (and ends) on the public schema, whatever the last one did."""
    tenant_connection().set_schema_to_public()
    yield
    tenant_connection().set_schema_to_public()


class LiveServer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, organisation: Organisation | None, path: str = "/") -> str:
        return f"http://{host_of(organisation)}:{self.port}{path}"


@pytest.fixture
def live_server_asgi(transactional_db: None) -> Iterator[LiveServer]:
    """The real ASGI server (uvicorn) on a free loopback port, against this test database."""
    with asgi_server() as port:
        yield LiveServer(port)


@pytest.fixture
def sandbox_root(settings: Any) -> Iterator[Path]:
    """A sandbox directory of this test's own (short: it holds Unix sockets), used by this
    process and handed to the workers it starts; every sandbox in it is stopped after."""
    from apps.scenarios.backends import sandbox_backend
    from sandbox.backends.local import LocalBackend

    root = Path(tempfile.mkdtemp(prefix="sdl-", dir="/tmp"))
    settings.SANDBOX_ROOT = str(root)
    settings.SANDBOX_BACKEND = "local"
    try:
        yield root
    finally:
        backend = sandbox_backend()
        leftover = LocalBackend(root=root)
        for handle in leftover.list():
            leftover.stop(handle)
        if isinstance(backend, LocalBackend):
            backend.close()
        shutil.rmtree(root, ignore_errors=True)
