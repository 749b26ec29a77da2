"""The instructors' live feed: every learner's progress in the organisation as it
happens (a check passed, a step done, a lab started), for dashboards to update without
reloading. Learners are refused (4403), like the pages it feeds."""

from typing import Any

from apps.accounts.consumers import OrganisationConsumer
from apps.accounts.models import Role
from apps.progress.events import progress_group


class ProgressConsumer(OrganisationConsumer):
    role = Role.INSTRUCTOR

    async def connected(self) -> None:
        self.group = progress_group(self.organisation.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "organisation": self.organisation.slug})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"type": "error", "message": "This feed is read-only."})

    async def progress_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "progress", **event["update"]})
