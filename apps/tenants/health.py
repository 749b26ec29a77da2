"""Readiness: can this process reach what it needs? Reasons stay short (no hosts, users
or ports in a public answer); the detail goes to the log."""

import logging

import redis
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 2.0
log = logging.getLogger(__name__)


def _reason(component: str, exc: Exception) -> str:
    log.warning("readiness check failed", extra={"component": component, "error": repr(exc)})
    return f"unreachable ({type(exc).__name__})"


def database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means not ready; say which
        return _reason("postgresql", exc)
    return None


def redis_problem() -> str | None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except Exception as exc:
        return _reason("redis", exc)
    finally:
        client.close()
    return None


def readiness_problems() -> dict[str, str]:
    checks = {"postgresql": database_problem, "redis": redis_problem}
    return {name: problem for name, check in checks.items() if (problem := check())}
