"""Real processes of our own for tests: the ASGI server and a Celery worker, each on this
test database, each stopped by its PID when the test ends."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from config.localservices import free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60


def database_url_of_test_db() -> str:
    """The URL of this worker's test database, for processes the tests start."""
    db = connection.settings_dict
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """This process's environment pointed at the test database; `extra` overrides."""
    return {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **extra,
    }


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def asgi_server(**extra_env: str) -> Iterator[int]:
    """uvicorn serving config.asgi on a free loopback port; yields the port."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--ws-per-message-deflate",
            "false",  # as make dev and the deployment run it
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=process_env(PUBLIC_PORT=str(port), **extra_env),
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                assert process.poll() is None, f"uvicorn exited with {process.returncode}"
                if time.monotonic() >= deadline:  # a bound on the loop, not a speed check
                    raise TimeoutError("uvicorn did not start listening") from None
                time.sleep(0.1)
        yield port
    finally:
        stop(process)


class WorkerNode(str):
    """The worker's node name, carrying the pid of its process."""

    pid: int


@contextmanager
def celery_worker(**extra_env: str) -> Iterator[WorkerNode]:
    """`celery worker` on this test process's own queue; yields its node name."""
    from config.celery import app

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    node = f"test-{worker}-{os.getpid()}-{time.monotonic_ns()}@localhost"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--queues",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--hostname",
            node,
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=process_env(**extra_env),
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not app.control.ping(destination=[node], timeout=0.5):
            assert process.poll() is None, f"celery worker exited with {process.returncode}"
            if time.monotonic() >= deadline:
                raise TimeoutError("celery worker did not answer a ping")
        named = WorkerNode(node)
        named.pid = process.pid
        yield named
    finally:
        stop(process)


def wait_for(predicate: Callable[[], T], what: str, seconds: float = START_SECONDS) -> T:
    """Polls `predicate` until it returns something true, and returns that; gives up with
    TimeoutError after `seconds` (a bound on the loop, not a speed check)."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


@contextmanager
def relay_process(**extra_env: str) -> Iterator[subprocess.Popen]:
    """`manage.py lab_relay`, the telemetry relay, against the test database and Redis."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "lab_relay"], cwd=ROOT, env=process_env(**extra_env)
    )
    try:
        yield process
    finally:
        stop(process)
