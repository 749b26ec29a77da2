"""`make dev` end to end: the supervisor migrates a fresh database, sets up the demo
organisation, runs web + worker + beat, answers on the public and demo hosts, and stops
every process it started."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
import pytest
from django.conf import settings

from config.localservices import free_port
from tests.support.servers import database_url_of_test_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database(db) -> Iterator[str]:
    name = f"sdlab_devcheck_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = database_url_of_test_db()
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres")).replace(
        "postgres://", "postgresql://", 1
    )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def get(port: int, host: str, path: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"Host": f"{host}:{port}"}, timeout=5
    )


def wait_until_up(port: int, process: subprocess.Popen, output: Path) -> None:
    """Until the devserver has printed where to log in (it does so once web answers)."""
    deadline = time.monotonic() + 240
    while "Ctrl-C stops everything" not in output.read_text():
        assert process.poll() is None, f"devserver exited early:\n{output.read_text()[-3000:]}"
        if time.monotonic() >= deadline:  # a bound on the loop, not a speed check
            raise TimeoutError(f"devserver never came up:\n{output.read_text()[-3000:]}")
        time.sleep(0.5)


def run_devserver_and_check(env: dict[str, str], port: int, output: Path) -> None:
    """Starts `python -m config.devserver`, checks what a person would, stops it, and
    proves every process it started is gone."""
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.devserver"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    children: list[psutil.Process] = []
    try:
        wait_until_up(port, process, output)
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 4  # web, worker, beat, relay

        public = get(port, settings.BASE_DOMAIN, "/")
        assert public.status_code == 200
        demo_login = get(port, f"demo.{settings.BASE_DOMAIN}", "/accounts/login/")
        assert demo_login.status_code == 200
        assert "Log in to Demo Organisation" in demo_login.text
        assert get(port, settings.BASE_DOMAIN, "/readyz").status_code == 200

        log = output.read_text()
        assert f"http://demo.{settings.BASE_DOMAIN}:{port}/accounts/login/" in log
        assert "owner@demo.test" in log
        assert "learner@demo.test" in log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], f"left running: {alive}"


def test_make_dev_runs_the_platform_with_a_demo_organisation(fresh_database, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "PORT": str(port),
        "CELERY_QUEUE": f"devcheck-{os.getpid()}",
        "DEV_STOP_AFTER": "300",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
    }
    run_devserver_and_check(env, port, tmp_path / "devserver.log")

    # Setting up the demo again changes nothing.
    again = subprocess.run(
        [sys.executable, "manage.py", "demo_setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "nothing changed" in again.stdout


def test_make_dev_on_a_bare_machine_starts_its_own_postgresql_and_redis(tmp_path):
    port = free_port()
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "SDLAB_RUN_DIR": str(run_dir),
        "PORT": str(port),
        "CELERY_QUEUE": f"devcheck-bare-{os.getpid()}",
        "DEV_STOP_AFTER": "300",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
    }
    run_devserver_and_check(env, port, tmp_path / "devserver.log")
    log = (tmp_path / "devserver.log").read_text()
    assert "starting embedded PostgreSQL" in log
    assert "starting embedded Redis" in log
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(str(run_dir) in part for part in p.info["cmdline"] or [])
    ]
    _, alive = psutil.wait_procs(leftovers, timeout=30)
    assert alive == [], f"embedded servers left running: {alive}"
