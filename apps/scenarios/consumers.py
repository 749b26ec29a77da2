"""The lab page's WebSocket: the session's frames and state, and the learner's switches.

The session's learner drives the lab; the organisation's instructors watch read-only;
anyone else is refused like a page would be (4404 not a member or no such session,
4403 a member who may not watch it, 4401 anonymous)."""

import asyncio
import json
from typing import Any

from channels.consumer import get_handler_name

from apps.accounts.consumers import OrganisationConsumer
from apps.accounts.models import Role
from apps.scenarios.events import (
    hidden_scenarios,
    lab_notice,
    lab_session_group,
    last_frame,
    relay_key,
)
from apps.scenarios.fanout import fanout
from apps.scenarios.models import LabSession, LabSessionState
from sandbox.catalog import MITIGATIONS, SCENARIOS
from sandbox.client import SandboxClient, SandboxError
from sandbox.spec import ParameterError, parameters_validate

CONTROL_TYPES = ("scenario", "mitigation", "load")
# What a learner may set of their lab's simulated users: a rate the sandbox's limits
# carry, and the shares of reads, searches and reads of the one hot product.
LOAD_BOUNDS = {
    "rate_rps": (0.0, 50.0),
    "read_ratio": (0.0, 1.0),
    "search_ratio": (0.0, 1.0),
    "hot_key_ratio": (0.0, 1.0),
}


class LabSessionConsumer(OrganisationConsumer):
    role = Role.LEARNER

    async def connected(self) -> None:
        session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        session = await self.db(lambda: LabSession.objects.filter(pk=session_id).first())
        user = self.scope["user"]
        if session is None:
            await self.accept()
            await self.close(code=4404)
            return
        self.driver = session.learner_id == user.pk
        if not self.driver and not self.membership.has_role(Role.INSTRUCTOR):
            await self.accept()
            await self.close(code=4403)
            return
        self.session_id = session_id
        self.group = lab_session_group(self.organisation.schema_name, session_id)
        await self.accept()
        await fanout().join(self.group, self.deliver)
        await self.send_json(
            {"type": "hello", "read_only": not self.driver, "session": session.describe()}
        )
        frame = await asyncio.to_thread(last_frame, self.organisation.schema_name, session_id)
        if frame is not None:
            await self.send_json(frame)  # a reconnect resumes where the relay is
        notice = await asyncio.to_thread(lab_notice, self.organisation.schema_name, session_id)
        if notice is not None and self.driver:
            await self.send_json({"type": "progress", **notice})  # still to be acted on

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await fanout().leave(self.group, self.deliver)

    # ------------------------------------------------------------------ from the relay
    async def deliver(self, message: dict[str, Any]) -> None:
        """The fan-out's way in: straight to the message's handler. `dispatch` would first
        close stale database connections on a thread, one hop per frame and viewer (a
        thousand a second at a thousand viewers, and the garbage of each hop set off
        200 ms collections); these handlers only send."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def lab_frame(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event.get("text") or json.dumps(event["frame"]))

    async def lab_event(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "state", **event["event"]})

    async def lab_progress(self, event: dict[str, Any]) -> None:
        """What an app built on labs has to say about this one (a check passed...)."""
        await self.send_json({"type": "progress", **event["progress"]})

    # ------------------------------------------------------------------ from the browser
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        problem = self.control_problem(content)
        if problem:
            await self.send_json({"type": "error", "message": problem, "request": content})
            return
        session = await self.db(lambda: LabSession.objects.filter(pk=self.session_id).first())
        if session is None or session.state != LabSessionState.RUNNING:
            await self.send_json(
                {"type": "error", "message": "The lab is not running.", "request": content}
            )
            return
        key = relay_key(self.organisation.schema_name, self.session_id)
        if content["type"] != "load" and str(content["slug"]) in await asyncio.to_thread(
            hidden_scenarios, key
        ):
            # A drill's hidden scenario is left alone, and answered like any other, so
            # that switching it can neither find it nor end the drill.
            await self.send_json({"type": "ack", "request": content})
            return
        try:
            # The sandbox's answer stays here: whether a scenario "was active" would tell a
            # learner which one a drill hid.
            await asyncio.to_thread(self.forward, session.handle["address"], content)
        except SandboxError as exc:
            await self.send_json({"type": "error", "message": exc.message, "request": content})
            return
        except OSError:
            await self.send_json(
                {"type": "error", "message": "The sandbox did not answer.", "request": content}
            )
            return
        await self.send_json({"type": "ack", "request": content})

    def control_problem(self, content: Any) -> str | None:
        """What is wrong with a control message, for the person who sent it; None if fine."""
        if not isinstance(content, dict) or content.get("type") not in CONTROL_TYPES:
            return (
                'Send {"type": "scenario" or "mitigation", "slug": ..., "enabled": true or '
                'false, "parameters": {...}}, or {"type": "load", "rate_rps": ...}.'
            )
        if not getattr(self, "driver", False):
            return "You are watching this lab read-only."
        if content["type"] == "load":
            return self.load_problem(content)
        catalog = SCENARIOS if content["type"] == "scenario" else MITIGATIONS
        slug = str(content.get("slug"))
        if slug not in catalog:
            return f"Unknown {content['type']} “{slug}”."
        if not isinstance(content.get("enabled"), bool):
            return "“enabled” must be true or false."
        parameters = content.get("parameters") or {}
        if not isinstance(parameters, dict):
            return "“parameters” must be an object."
        if content["enabled"]:
            try:
                parameters_validate(catalog[slug].parameters, parameters)
            except ParameterError as exc:
                return f"{slug}: {exc.message}"
        return None

    @staticmethod
    def load_problem(content: dict[str, Any]) -> str | None:
        settings = {k: v for k, v in content.items() if k != "type"}
        unknown = sorted(set(settings) - set(LOAD_BOUNDS))
        if unknown or not settings:
            return (
                f"The load takes {', '.join(LOAD_BOUNDS)}; not {', '.join(unknown) or 'nothing'}."
            )
        for name, value in settings.items():
            low, high = LOAD_BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"“{name}” must be a number."
            if not low <= value <= high:
                return f"“{name}” must be from {low:g} to {high:g}."
        return None

    @staticmethod
    def forward(address: str, content: dict[str, Any]) -> Any:
        client = SandboxClient(address, timeout=3.0)
        if content["type"] == "load":
            return client.load(**{k: v for k, v in content.items() if k != "type"})
        slug, parameters = content["slug"], content.get("parameters") or {}
        if content["type"] == "scenario":
            if content["enabled"]:
                return client.scenario_enable(slug, parameters)
            return client.scenario_disable(slug)
        if content["enabled"]:
            return client.mitigation_enable(slug, parameters)
        return client.mitigation_disable(slug)
