"""Lab session events, sent to the session's viewers after the transaction commits."""

import json
from functools import cache
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from apps.scenarios.models import LabSession
from apps.tenants.schemas import tenant_connection


def lab_session_group(schema_name: str, session_id: int) -> str:
    return f"lab.{schema_name}.{session_id}"


def lab_session_publish(session: LabSession, event: str = "state") -> None:
    """Queues the session's state for its viewers; sent only if the write commits."""
    payload: dict[str, Any] = {"event": event, **session.describe()}
    group = lab_session_group(tenant_connection().schema_name, session.pk)

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": "lab.event", "event": payload})

    transaction.on_commit(send)


# ------------------------------------------------------------------ the relay's registry
# Running sandboxes, in one Redis hash the relay reads every tick: "<schema>:<id>" ->
# {"address": ...}. Written after the commit that makes a session run or end.
def redis_prefix() -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:relay"


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def relay_redis() -> redis.Redis:
    return _redis(settings.REDIS_URL)


def relay_key(schema_name: str, session_id: int) -> str:
    return f"{schema_name}:{session_id}"


def relay_register(session: LabSession) -> None:
    key = relay_key(tenant_connection().schema_name, session.pk)
    address = (session.handle or {}).get("address", "")

    def write() -> None:
        relay_redis().hset(f"{redis_prefix()}:running", key, json.dumps({"address": address}))

    transaction.on_commit(write)


def relay_unregister(session: LabSession) -> None:
    key = relay_key(tenant_connection().schema_name, session.pk)

    def write() -> None:
        client = relay_redis()
        client.hdel(f"{redis_prefix()}:running", key)
        client.delete(_hidden_key(key), _notice_key(key))
        client.delete(f"{redis_prefix()}:last:{key}")

    transaction.on_commit(write)


def running_sandboxes() -> dict[str, str]:
    """The relay's registry: "<schema>:<id>" -> the running sandbox's address."""
    raw = relay_redis().hgetall(f"{redis_prefix()}:running")
    return {
        (k.decode() if isinstance(k, bytes) else k): json.loads(v).get("address", "")
        for k, v in raw.items()
    }


def _hidden_key(key: str) -> str:
    return f"{redis_prefix()}:hidden:{key}"


def lab_session_hide(schema_name: str, session_id: int, slug: str) -> None:
    """A scenario the session's viewers are not told about (an incident drill's): the
    relay leaves it, and what would give it away, out of every frame it sends."""
    relay_redis().sadd(_hidden_key(relay_key(schema_name, session_id)), slug)


def lab_session_unhide(schema_name: str, session_id: int, slug: str) -> None:
    relay_redis().srem(_hidden_key(relay_key(schema_name, session_id)), slug)


def hidden_scenarios(key: str) -> set[str]:
    """The scenarios hidden from the viewers of session "<schema>:<id>"."""
    return {
        m.decode() if isinstance(m, bytes) else m for m in relay_redis().smembers(_hidden_key(key))
    }


# A notice for the learner with something to do (a drill's "I found it"), kept while it
# stands so that a reloaded lab page shows it again.
def _notice_key(key: str) -> str:
    return f"{redis_prefix()}:notice:{key}"


def lab_notice_set(schema_name: str, session_id: int, notice: dict[str, Any]) -> None:
    relay_redis().set(
        _notice_key(relay_key(schema_name, session_id)), json.dumps(notice), ex=6 * 3600
    )


def lab_notice_clear(schema_name: str, session_id: int) -> None:
    relay_redis().delete(_notice_key(relay_key(schema_name, session_id)))


def lab_notice(schema_name: str, session_id: int) -> dict[str, Any] | None:
    raw = relay_redis().get(_notice_key(relay_key(schema_name, session_id)))
    return json.loads(raw) if raw else None


def last_frame(schema_name: str, session_id: int) -> dict[str, Any] | None:
    """The relay's latest frame of a session: what a (re)connecting viewer sees first."""
    raw = relay_redis().get(f"{redis_prefix()}:last:{relay_key(schema_name, session_id)}")
    return json.loads(raw) if raw else None
