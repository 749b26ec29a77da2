"""WebSocket consumers scoped like views: non-member 4404, missing role 4403, anonymous 4401."""

import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import tenant_context

from apps.accounts.access import Access, access_check
from apps.accounts.models import Role

T = TypeVar("T")
CLOSE_CODES = {Access.ANONYMOUS: 4401, Access.FORBIDDEN: 4403, Access.NOT_MEMBER: 4404}


def organisation_group(schema_name: str) -> str:
    return f"org.{schema_name}"


class OrganisationConsumer(AsyncJsonWebsocketConsumer):
    """Base for every tenant consumer: declares `role`, gets `self.organisation`."""

    role: ClassVar[str | None] = None

    async def connect(self) -> None:
        organisation = self.scope.get("organisation")
        outcome, membership = await database_sync_to_async(access_check)(
            user=self.scope.get("user"), organisation=organisation, role=self.role
        )
        if outcome != Access.ALLOWED:
            # Accept, then close with a code: a browser sees close codes, never handshake statuses.
            await self.accept()
            await self.close(code=CLOSE_CODES[outcome])
            return
        self.organisation = organisation
        self.membership = membership
        await self.connected()

    async def connected(self) -> None:
        await self.accept()

    async def db(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs database work in a thread, inside this organisation's schema."""

        def in_schema() -> T:
            with tenant_context(self.organisation):
                return work(*args, **kwargs)

        return await database_sync_to_async(in_schema)()


class OrganisationEventsConsumer(OrganisationConsumer):
    """The organisation's event stream: what changed, for every member's open pages."""

    role = Role.LEARNER

    async def connected(self) -> None:
        self.group = organisation_group(self.organisation.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {
                "type": "hello",
                "organisation": self.organisation.slug,
                "user": self.scope["user"].email,
                "role": self.membership.role,
            }
        )

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        try:
            content = json.loads(text_data or "")
        except ValueError:
            await self.send_json({"type": "error", "message": "Messages must be JSON objects."})
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "ping":
            await self.send_json(
                {"type": "error", "message": 'Unknown message: send {"type": "ping"}.'}
            )
            return
        await self.send_json({"type": "pong"})

    async def organisation_event(self, event: dict) -> None:
        await self.send_json({"type": "event", "event": event["event"]})
