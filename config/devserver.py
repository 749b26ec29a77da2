"""`make dev`: the whole platform on this machine, stopped together by Ctrl-C.

Starts PostgreSQL and Redis if DATABASE_URL / REDIS_URL are unset, migrates, sets up the
demo organisation (idempotent), then runs web (ASGI: HTTP and WebSockets), Celery worker and
Celery beat, and prints where to log in.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from config.localservices import RUN_DIR, services

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def processes(port: str) -> dict[str, list[str]]:
    # Opt-in /metrics for Prometheus (observability/): the relay's and the worker's ports.
    relay_port = os.environ.get("RELAY_METRICS_PORT", "")
    relay_metrics = ["--metrics-port", relay_port] if relay_port else []
    return {
        "web": [
            str(BIN / "uvicorn"),
            "config.asgi:application",
            "--host",
            os.environ.get("WEB_HOST", "127.0.0.1"),
            "--port",
            port,
            "--no-access-log",
            # Lab frames go to every viewer: compressing each copy costs the server more
            # CPU than the bytes are worth on a few-KB frame.
            "--ws-per-message-deflate",
            "false",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("WORKER_CONCURRENCY", "2"),
        ],
        "beat": [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(RUN_DIR / "celerybeat-schedule"),
        ],
        # reads each running sandbox once a second and streams it to the lab pages
        "relay": [PYTHON, str(ROOT / "manage.py"), "lab_relay", *relay_metrics],
    }


def worker_metrics_env() -> dict[str, str]:
    """With CELERY_METRICS_PORT set, the prefork worker's children count into one directory
    that the worker's parent serves (config/celery.py)."""
    if not os.environ.get("CELERY_METRICS_PORT"):
        return {}
    directory = RUN_DIR / "celery-metrics"
    directory.mkdir(parents=True, exist_ok=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}


def web_wait(port: str, web: subprocess.Popen, timeout: float = 60) -> bool:
    """True once the web process answers /healthz, so the URLs printed next work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and web.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    RUN_DIR.mkdir(exist_ok=True)
    port = os.environ.get("PORT", os.environ.get("PUBLIC_PORT", "8000"))
    stop_after = float(
        os.environ.get("DEV_STOP_AFTER", "0")
    )  # for smoke tests; 0 = run until Ctrl-C
    with services() as service_env:
        env = {
            **os.environ,
            **service_env,
            **worker_metrics_env(),
            "PUBLIC_PORT": port,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "config.settings.dev"
            ),
        }
        manage = [PYTHON, str(ROOT / "manage.py")]
        subprocess.run(
            [*manage, "migrate_schemas", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        demo = subprocess.run(
            [*manage, "demo_setup"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if demo.returncode != 0:
            print(demo.stdout + demo.stderr, file=sys.stderr)
            print("devserver: demo_setup failed (above); nothing started", file=sys.stderr)
            return 1
        # the platform's tutorials, checked and loaded (a no-op when nothing changed)
        subprocess.run([*manage, "tutorials_load"], env=env, check=True, cwd=ROOT)
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in processes(port).items():
                children[name] = subprocess.Popen(command, env=env, cwd=ROOT)
            if not web_wait(port, children["web"]):
                print(f"devserver: web did not answer on port {port}; stopping", file=sys.stderr)
                return 1
            pids = ", ".join(f"{name} {child.pid}" for name, child in children.items())
            print(f"\nSystems Design Lab is running ({pids}).\n", flush=True)
            print(demo.stdout, flush=True)
            print("Ctrl-C stops everything.\n", flush=True)
            started = time.monotonic()
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        print(
                            f"devserver: {name} exited with {child.returncode}; stopping",
                            file=sys.stderr,
                        )
                        return 1
                if stop_after and time.monotonic() - started > stop_after:
                    break
                time.sleep(0.5)
            return 0
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


if __name__ == "__main__":
    sys.exit(main())
