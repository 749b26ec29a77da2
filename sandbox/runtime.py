"""The sandbox supervisor: the first process of a sandbox.

It forks every service from itself (they share its imported code, so a sandbox starts in
milliseconds and stays small), supervises them (a crashed service is restarted, as an
orchestrator would), turns the scenario engine's knobs into settings on the services and
on the fault proxy in front of each (the hops leading to it), samples their metrics into
key figures, and serves the control API on a Unix socket in its run directory (and on TCP
when a backend asks for it).

    python -m sandbox.runtime --run-dir /tmp/sb1 [--base-port 17000] [--ttl 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.boards import ServiceBoards, install
from sandbox.server import Server
from sandbox.topology import SERVICES, Topology

PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class RuntimeOptions:
    run_dir: Path
    base_port: int = 17000
    ttl_seconds: float = 3600.0
    control_port: int | None = None  # TCP control API too (docker/kubernetes backends)
    control_host: str = "127.0.0.1"
    session: str = ""
    scenarios: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    load_rps: float | None = None
    # Keep the services' spans in the supervisor for the control plane to collect: an
    # isolated sandbox has no route to a collector of its own.
    traces: bool = False


@dataclass
class Child:
    name: str
    pid: int
    started_at: float
    restarts: int = 0
    backoff: int = 0  # crashes in a row: how long the next restart waits
    exit_status: str = ""
    healthy: bool = False
    boards: ServiceBoards | None = None  # its metric values and log tail
    running: bool = True  # false between its exit and its restart


def event_loop_policy() -> asyncio.AbstractEventLoopPolicy | None:
    """uvloop where installed: about a third less CPU per request than asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.EventLoopPolicy()


def die_with_parent() -> None:
    """The kernel kills this process when its parent dies: no orphaned services."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def cache_dir() -> Path:
    path = Path(os.environ.get("SANDBOX_CACHE_DIR") or Path.home() / ".cache" / "sdlab-sandbox")
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_template() -> Path:
    """The shop's database, built once per machine and copied into every sandbox."""
    from sandbox.services.products_db import PRODUCTS, SCHEMA_VERSION, database_create

    path = cache_dir() / f"shop-{PRODUCTS}-{SCHEMA_VERSION}.sqlite3"
    if not path.exists():
        database_create(path)
    return path


def service_for(name: str, topology: Topology, data_dir: Path) -> Any:
    from sandbox.services.cache import Cache
    from sandbox.services.gateway import Gateway
    from sandbox.services.inventory import Inventory
    from sandbox.services.loadgen import Loadgen
    from sandbox.services.orders import Orders
    from sandbox.services.queue import Queue
    from sandbox.services.worker import Worker

    if name == "inventory":
        return Inventory(topology, database=data_dir / "shop.sqlite3")
    classes = {
        "gateway": Gateway,
        "orders": Orders,
        "cache": Cache,
        "queue": Queue,
        "worker": Worker,
        "loadgen": Loadgen,
    }
    return classes[name](topology)


async def serve(service: Any, host: str, port: int, ready_fd: int | None = None) -> None:
    """Serves the service's aiohttp application on the lean server (`sandbox.server`);
    once it listens, says so on `ready_fd` (its name and a newline)."""
    server = Server(service.app())
    if service.hops is not None:  # the hops into it reach it without a socket
        service.hops.proxy.serve_in_process(server.connection)
    await server.start(host, port)
    if ready_fd is not None:
        with contextlib.suppress(OSError):  # a full pipe: the supervisor's check still works
            os.write(ready_fd, f"{service.name}\n".encode())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop()


def child_main(
    name: str,
    topology: Topology,
    data_dir: Path,
    boards: ServiceBoards | None = None,
    ready_fd: int | None = None,
) -> None:
    """Runs in the forked child: a fresh event loop serving one service, until SIGTERM."""
    die_with_parent()
    if boards is not None:
        install(boards)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    asyncio.events._set_running_loop(None)  # a fork inside a running loop: start clean
    asyncio.set_event_loop_policy(event_loop_policy())
    os.environ["SANDBOX_SERVICE"] = name
    service = service_for(name, topology, data_dir)
    asyncio.run(serve(service, topology.host, topology.service_port(name), ready_fd))


def fork_child(
    name: str,
    topology: Topology,
    data_dir: Path,
    boards: ServiceBoards | None = None,
    inherited: Iterable[ServiceBoards] = (),
    ready_fd: int | None = None,
) -> int:
    """Forks one service onto its `boards`; it lets go of the others it inherits, and
    writes its name to `ready_fd` once it serves."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for other in inherited:
                if other is not boards:
                    other.close()
            child_main(name, topology, data_dir, boards, ready_fd)
        except BaseException as exc:  # the child must never return into the supervisor
            code = 1
            print(
                json.dumps(
                    {
                        "level": "error",
                        "service": name,
                        "message": "service crashed",
                        "error": repr(exc),
                    }
                ),
                file=sys.stderr,
                flush=True,
            )
        finally:
            os._exit(code)
    return pid


def prepare(options: RuntimeOptions) -> Path:
    data_dir = options.run_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "shop.sqlite3"
    if not target.exists():
        shutil.copyfile(database_template(), target)
    os.environ["SANDBOX_DATA_DIR"] = str(data_dir)
    return data_dir


def run(options: RuntimeOptions) -> int:
    from sandbox.control import Supervisor

    options.run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = prepare(options)
    topology = Topology(base_port=options.base_port)
    if options.traces:
        # The services export to the supervisor's buffer, over the sandbox's own loopback.
        os.environ["SANDBOX_OTLP_ENDPOINT"] = f"http://{topology.host}:{topology.trace_port}"
        os.environ.setdefault("SANDBOX_SESSION", options.session)
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    # Everything the children need is imported now, then frozen: forked children share
    # those pages instead of copying them on the first garbage collection.
    service_for("gateway", topology, data_dir)
    event_loop_policy()  # imported before the forks, like the rest
    gc.freeze()
    boards = {name: ServiceBoards() for name in SERVICES}
    for board in boards.values():
        board.metrics.watched = True  # a sandbox counts as watched for its first minute
    # Each service says when it serves: no polling of seven /_health endpoints at a start.
    ready_from, ready_to = os.pipe()
    os.set_blocking(ready_to, False)
    children = {
        name: Child(
            name,
            fork_child(name, topology, data_dir, boards[name], boards.values(), ready_to),
            time.monotonic(),
            boards=boards[name],
        )
        for name in boards
    }
    os.close(ready_to)  # the services have it; services restarted later do not need it
    supervisor = Supervisor(options, topology, children, data_dir, ready_from)
    asyncio.set_event_loop_policy(event_loop_policy())
    return asyncio.run(supervisor.main())


def parse(argv: list[str]) -> RuntimeOptions:
    parser = argparse.ArgumentParser(prog="python -m sandbox.runtime", description=__doc__)
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--base-port", type=int, default=17000)
    parser.add_argument(
        "--ttl", type=float, default=3600.0, help="seconds before the sandbox stops itself"
    )
    parser.add_argument("--control-port", type=int, default=None)
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument("--session", default="")
    parser.add_argument(
        "--scenario", action="append", default=[], help="slug or slug=JSON parameters; repeatable"
    )
    parser.add_argument("--load-rps", type=float, default=None)
    parser.add_argument(
        "--traces",
        action="store_true",
        help="services send spans to the supervisor; GET /traces hands them out",
    )
    args = parser.parse_args(argv)
    scenarios = []
    for item in args.scenario:
        slug, _, raw = item.partition("=")
        try:
            parameters = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            parser.error(f"--scenario {slug}: parameters are not JSON ({exc})")
        scenarios.append((slug, parameters))
    return RuntimeOptions(
        run_dir=args.run_dir.resolve(),
        base_port=args.base_port,
        ttl_seconds=args.ttl,
        control_port=args.control_port,
        control_host=args.control_host,
        session=args.session,
        scenarios=scenarios,
        load_rps=args.load_rps,
        traces=args.traces,
    )


def main(argv: list[str] | None = None) -> int:
    return run(parse(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
