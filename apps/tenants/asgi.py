"""Channels knows no tenants: these ASGI middlewares check the origin and resolve the
organisation from the host, as the HTTP middleware does."""

from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async

from apps.tenants.context import current_tenant
from apps.tenants.resolve import hostname_of, organisation_for_host

CLOSE_UNKNOWN_ORGANISATION = 4404


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class SameOriginOnly:
    """A WebSocket must come from a page of the same site: another organisation's page
    (whose scripts an organisation may author) cannot open one with the user's cookie."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            host = hostname_of(_header(scope, b"host"))
            if not origin or not host or hostname_of(urlsplit(origin).netloc) != host:
                await receive()  # the websocket.connect message
                await send({"type": "websocket.close", "code": 4403})  # refused at the handshake
                return None
        return await self.inner(scope, receive, send)


class OrganisationFromHostMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        match = await database_sync_to_async(organisation_for_host)(_header(scope, b"host"))
        if match.unknown_organisation:
            await receive()  # the websocket.connect message
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_UNKNOWN_ORGANISATION})
            return None
        scope = dict(scope, organisation=match.organisation)
        token = current_tenant.set(
            match.organisation.schema_name if match.organisation else "public"
        )
        try:
            return await self.inner(scope, receive, send)
        finally:
            current_tenant.reset(token)
