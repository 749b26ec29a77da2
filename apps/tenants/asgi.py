"""Channels knows no tenants: this ASGI middleware resolves the organisation from the host."""

from typing import Any

from channels.db import database_sync_to_async

from apps.tenants.context import current_tenant
from apps.tenants.resolve import organisation_for_host

CLOSE_UNKNOWN_ORGANISATION = 4404


class OrganisationFromHostMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        match = await database_sync_to_async(organisation_for_host)(host)
        if match.unknown_organisation:
            await receive()  # the websocket.connect message
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_UNKNOWN_ORGANISATION})
            return None
        scope = dict(scope, tenant=match.organisation)
        token = current_tenant.set(
            match.organisation.schema_name if match.organisation else "public"
        )
        try:
            return await self.inner(scope, receive, send)
        finally:
            current_tenant.reset(token)
