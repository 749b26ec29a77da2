"""On a bare machine (no DATABASE_URL / REDIS_URL) real servers start from wheels, serve
the wrapped command, and are stopped when it ends."""

import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import os, psycopg, redis
with psycopg.connect(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)) as c:
    print("postgres", c.execute("SELECT current_database()").fetchone()[0])
print("redis", redis.Redis.from_url(os.environ["REDIS_URL"]).ping())
"""


def processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_embedded_postgresql_and_redis_serve_a_command_and_stop_after(tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SDLAB_RUN_DIR"] = str(run_dir)

    result = subprocess.run(
        [sys.executable, "-m", "config.localservices", "run", "--", sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "postgres sdlab" in result.stdout
    assert "redis True" in result.stdout
    _, alive = psutil.wait_procs(processes_under(run_dir), timeout=30)
    assert alive == []


def test_a_command_line_without_a_command_is_refused_with_usage():
    result = subprocess.run(
        [sys.executable, "-m", "config.localservices", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "usage: python -m config.localservices run -- COMMAND" in result.stderr
