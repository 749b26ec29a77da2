"""Readiness: can this process reach what it needs?"""

import redis
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 2.0


def database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means not ready; say which
        return f"{type(exc).__name__}: {exc}".strip()
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
        return f"{type(exc).__name__}: {exc}".strip()
    finally:
        client.close()
    return None


def readiness_problems() -> dict[str, str]:
    checks = {"postgresql": database_problem, "redis": redis_problem}
    return {name: problem for name, check in checks.items() if (problem := check())}
